"""``authgate backup`` and ``authgate restore`` (docs/deployment.md, "Backups and restore").

SQLite: ``sqlite3.Connection.backup`` (the online backup API) copies a consistent
snapshot while the gateway keeps writing (WAL readers never block it), and restore copies
it back the same way. PostgreSQL: Debian's ``pg_dump --format=custom`` and ``pg_restore
--clean``, run for you (or by your own backup tooling: the restore record is what matters).

A restore sets the audit trail back: records and checkpoints written after the backup are
gone, and the witness (``audit.witness``) still holds those checkpoints. So ``restore``
writes an ``audit.restore`` record naming the restored database's newest checkpoint;
``audit verify --witness`` then reports the rolled-back checkpoints as an *explained
restore* (``audit/witness.py: Restore``) instead of damage. Nothing is hidden: the record
is in the chain, and the lost checkpoints are listed by every verification.
"""
from __future__ import annotations

import getpass
import os
import shutil
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import click
from sqlalchemy.engine import URL, make_url

from authgate.core.values import AuditEvent, Outcome

_NEWEST = "SELECT seq, ts FROM audit_checkpoints ORDER BY seq DESC LIMIT 1"


@click.command("backup")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="The backup file to write (refused if it exists).")
@click.pass_obj
def backup_command(obj: Any, output: str) -> None:
    """Copy the database to OUTPUT while the gateway runs."""
    url = make_url(obj.settings.storage.url)
    target = Path(output)
    if target.exists():
        raise click.ClickException(f"{target} exists; give a new file name")
    if url.get_backend_name() == "sqlite":
        _sqlite_copy(Path(str(url.database)), target)
        with sqlite3.connect(f"file:{target}?mode=ro", uri=True) as conn:
            row = conn.execute(_NEWEST).fetchone()
    else:
        _run([_tool("pg_dump"), "--format=custom", "--no-owner", "--file", str(target),
              _libpq(url)], password=url.password)
        row = None
    target.chmod(0o600)  # it holds password verifiers and sealed TOTP seeds
    click.echo(f"backup written to {target}"
               + (f"; newest checkpoint #{row[0]}" if row else ""))


@click.command("restore")
@click.argument("backup_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--yes", is_flag=True, help="Do not ask: the database is replaced.")
@click.pass_obj
def restore_command(obj: Any, backup_file: str, yes: bool) -> None:
    """Replace the database by BACKUP_FILE (stop the gateway first) and record the restore."""
    settings = obj.settings
    url = make_url(settings.storage.url)
    if not yes:
        click.confirm(f"Replace the database {url.render_as_string()} by {backup_file}? "
                      "Stop every gateway instance first.", abort=True)
    source = Path(backup_file)
    if url.get_backend_name() == "sqlite":
        _check_sqlite_backup(source)
        _sqlite_copy(source, Path(str(url.database)))
    else:
        _run([_tool("pg_restore"), "--clean", "--if-exists", "--no-owner",
              "--single-transaction", "--dbname", _libpq(url), str(source)],
             password=url.password)
    from authgate.storage.engine import migrate

    migrate(settings.storage.url)  # a backup from an older release gets the newer schema
    checkpoint = _record_restore(settings, source)
    click.echo(f"restored from {source}; newest checkpoint #{checkpoint}. The audit trail "
               "records the restore (audit.restore): audit verify --witness reports the "
               "rolled-back checkpoints as an explained restore.")


def _sqlite_copy(source: Path, target: Path) -> None:
    """The online backup API: a consistent copy, page by page, while writers go on."""
    with sqlite3.connect(f"file:{source}?mode=ro", uri=True) as src, \
            sqlite3.connect(target) as dst:
        src.backup(dst, pages=1024)
    src.close()
    dst.close()


def _check_sqlite_backup(source: Path) -> None:
    try:
        with sqlite3.connect(f"file:{source}?mode=ro", uri=True) as conn:
            ok = conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            conn.execute("SELECT count(*) FROM audit_events").fetchone()
        conn.close()
    except sqlite3.DatabaseError as exc:
        raise click.ClickException(f"{source} is not an authgate backup: {exc}") from exc
    if not ok:
        raise click.ClickException(f"{source} fails SQLite's integrity check")


def _record_restore(settings: Any, source: Path) -> int:
    """The ``audit.restore`` record, written after the restore with the configured keys."""
    from authgate.audit.witness import RESTORE_EVENT
    from authgate.composition.audit import build_audit_log
    from authgate.core.clock import SystemClock
    from authgate.storage.engine import make_engine

    engine = make_engine(settings.storage.url)
    log = build_audit_log(settings, engine, SystemClock(), close_on_exit=False)
    newest = max((row.seq for row in log.store.checkpoints()), default=0)
    witnessed = _witness_newest(settings.audit.witness)
    log.record(AuditEvent(event=RESTORE_EVENT, outcome=Outcome.INFO,
                          reason="restored_from_backup", username=getpass.getuser(),
                          detail=(("backup", source.name[:120]), ("checkpoint", str(newest)),
                                  ("witness_newest", str(witnessed)))))
    log.close()
    engine.dispose()
    return newest


def _witness_newest(witness: str) -> int:
    """The newest checkpoint the witness holds (what the restore sets back), 0 if none."""
    if not witness:
        return 0
    from authgate.audit.witness import read_witness

    try:
        return max((w.seq for w in read_witness(witness)), default=0)
    except (OSError, ValueError):
        return 0


def _libpq(url: Any) -> str:
    """The SQLAlchemy URL as a libpq URI (``postgresql+psycopg://`` → ``postgresql://``),
    without the password: that goes in ``PGPASSWORD``, never on a command line ``ps`` shows."""
    bare = URL.create("postgresql", username=url.username, host=url.host, port=url.port,
                      database=url.database, query=url.query)
    return str(bare.render_as_string(hide_password=False))


def _tool(name: str) -> str:
    found = shutil.which(name) or next(
        (str(p) for p in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))), None)
    if found is None:
        raise click.ClickException(f"{name} not found: apt-get install postgresql-client")
    return found


def _run(args: list[str], *, password: str | None = None) -> None:
    env = {**os.environ, **({"PGPASSWORD": str(password)} if password else {})}
    done = subprocess.run(args, capture_output=True, text=True, timeout=3600,  # noqa: S603
                          env=env)
    if done.returncode != 0:
        raise click.ClickException(f"{Path(args[0]).name} failed: {done.stderr.strip()[-800:]}")
