"""``authgate backup`` / ``authgate restore`` (issue 18 item 5) on real SQLite files and a real
PostgreSQL cluster (Debian's ``pg_dump``/``pg_restore``): a restored backup verifies, and with
the witness configured the rollback a restore causes is *explained* by the ``audit.restore``
record it writes, never hidden and never silent damage.

The trail is written by the gateway's own writer (``build_audit_log``: Ed25519 checkpoints,
``audit.witness``); every command runs through the ``authgate`` click group.
"""
from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result
from sqlalchemy import text

from authgate.audit.checkpoints import generate_key_file
from authgate.cli import main
from authgate.composition.audit import build_audit_log
from authgate.config import load_settings
from authgate.core.clock import SystemClock
from authgate.storage.engine import make_engine, migrate
from tests.audit.conftest import event
from tests.conftest import TEST_ENCRYPTION_KEY, TEST_POLICIES, TEST_SECRET
from tests.fixtures.databases import _fresh_postgres


@dataclass(frozen=True)
class Site:
    root: Path
    url: str
    config: Path
    witness: Path


def _site(root: Path, url: str, *, key: Path | None = None) -> Site:
    users = root / "users.yaml"
    users.write_text("users: {}\n")
    if key is None:
        key = root / "signing.pem"
        generate_key_file(key)
    (root / "witness").mkdir()
    config = root / "authgate.yaml"
    config.write_text(yaml.safe_dump({
        "server": {"public_url": "https://auth.city.test"},
        "storage": {"url": url},
        "directory": {"file": {"path": str(users)}},
        "policy": {"path": str(TEST_POLICIES), "require_approval": False},
        "secrets": {"session_key": TEST_SECRET, "audit_key": "c" * 40,
                    "encryption_keys": [TEST_ENCRYPTION_KEY]},
        "audit": {"signing_key_file": str(key), "witness": "witness",
                  "checkpoint_every": 15},
    }))
    migrate(url)
    return Site(root, url, config, root / "witness")


@pytest.fixture(params=["sqlite", "postgres"])
def site(request: pytest.FixtureRequest, tmp_path: Path) -> Site:
    if request.param == "sqlite":
        return _site(tmp_path, f"sqlite:///{tmp_path / 'authgate.db'}")
    return _site(tmp_path, _fresh_postgres(request.getfixturevalue("postgres_url")))


def _session(site: Site, first: int, count: int) -> None:
    """One writer's run (a gateway process): records, then a closing checkpoint."""
    settings = load_settings(site.config)
    engine = make_engine(settings.storage.url)
    log = build_audit_log(settings, engine, SystemClock(), close_on_exit=False)
    for n in range(first, first + count):
        log.record(event(n))
    log.checkpoint()
    assert log.witness is not None and log.witness.wait_idle(5)
    log.close()
    engine.dispose()


def authgate(site: Site, *args: str) -> Result:
    return CliRunner().invoke(main, ["--config", str(site.config), *args])


def _verify(site: Site, *args: str) -> tuple[int, str]:
    result = authgate(site, "audit", "verify", "--jobs", "1", *args)
    return result.exit_code, result.output


def test_restored_backup_verifies_and_the_rollback_is_explained(site: Site) -> None:
    _session(site, 0, 40)
    backup = site.root / "nightly.backup"
    made = authgate(site, "backup", "-o", str(backup))
    assert made.exit_code == 0, made.output
    assert backup.stat().st_mode & 0o077 == 0  # password verifiers, sealed seeds
    _session(site, 40, 60)  # the day goes on after the backup: checkpoints witnessed
    code, out = _verify(site, "--witness", str(site.witness))
    assert code == 0, out

    done = authgate(site, "restore", "--yes", str(backup))
    assert done.exit_code == 0, done.output
    code, out = _verify(site)
    assert code == 0, out
    code, out = _verify(site, "--witness", str(site.witness))
    assert code == 0 and "explained restore:" in out and "rolled back" in out, out
    assert "restored_from_backup" not in out or "damage" not in out
    rows = _restore_rows(site)
    assert len(rows) == 1 and '"checkpoint"' in rows[0]

    _session(site, 100, 30)  # the gateway runs again: new checkpoints after the restore
    code, out = _verify(site, "--witness", str(site.witness))
    assert code == 0 and "explained restore:" in out, out


def test_a_copy_put_back_without_restore_is_still_a_rollback(site: Site) -> None:
    """Only ``authgate restore`` (which records it) explains a rollback: the same backup put
    back by hand is reported as ``rolled_back`` damage, as before."""
    _session(site, 0, 40)
    backup = site.root / "nightly.backup"
    assert authgate(site, "backup", "-o", str(backup)).exit_code == 0
    _session(site, 40, 60)
    if site.url.startswith("sqlite"):
        with sqlite3.connect(backup) as src, sqlite3.connect(site.url[10:]) as dst:
            src.backup(dst)
    else:
        from sqlalchemy.engine import make_url

        from authgate.cli.backup import _libpq, _run, _tool

        _run([_tool("pg_restore"), "--clean", "--if-exists", "--no-owner",
              "--single-transaction", "--dbname", _libpq(make_url(site.url)), str(backup)])
    code, out = _verify(site, "--witness", str(site.witness))
    assert code == 1 and "rolled_back:" in out, out


def test_a_restore_record_does_not_hide_later_damage(site: Site) -> None:
    """The restore explains what it set back and nothing else: records deleted after it
    are still damage."""
    _session(site, 0, 40)
    backup = site.root / "nightly.backup"
    assert authgate(site, "backup", "-o", str(backup)).exit_code == 0
    _session(site, 40, 60)
    assert authgate(site, "restore", "--yes", str(backup)).exit_code == 0
    _session(site, 100, 30)
    engine = make_engine(site.url)
    with engine.begin() as conn:
        newest = conn.execute(text("SELECT max(id) FROM audit_events")).scalar_one()
        conn.execute(text("DELETE FROM audit_events WHERE id > :n"), {"n": newest - 20})
    engine.dispose()
    code, out = _verify(site, "--witness", str(site.witness))
    assert code == 1, out


def test_backup_refuses_to_overwrite(site: Site) -> None:
    _session(site, 0, 5)
    existing = site.root / "exists.backup"
    existing.write_text("keep me")
    result = authgate(site, "backup", "-o", str(existing))
    assert result.exit_code != 0 and existing.read_text() == "keep me"


def test_sqlite_backup_while_the_gateway_writes(tmp_path: Path) -> None:
    """The online backup API copies a consistent snapshot while a writer goes on."""
    site = _site(tmp_path, f"sqlite:///{tmp_path / 'authgate.db'}")
    _session(site, 0, 20)
    writer = threading.Thread(target=_session, args=(site, 20, 400))
    writer.start()
    backup = tmp_path / "live.backup"
    made = authgate(site, "backup", "-o", str(backup))
    writer.join()
    assert made.exit_code == 0, made.output
    with sqlite3.connect(backup) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    restored = tmp_path / "restored"
    restored.mkdir()
    auditor = _site(restored, f"sqlite:///{backup}", key=tmp_path / "signing.pem")
    code, out = _verify(auditor)
    assert code == 0, out


def test_restore_refuses_a_file_that_is_not_a_backup(tmp_path: Path) -> None:
    site = _site(tmp_path, f"sqlite:///{tmp_path / 'authgate.db'}")
    junk = tmp_path / "junk.backup"
    junk.write_bytes(b"not a database" * 100)
    result = authgate(site, "restore", "--yes", str(junk))
    assert result.exit_code != 0 and "not an authgate backup" in result.output


def _restore_rows(site: Site) -> list[str]:
    engine = make_engine(site.url)
    with engine.connect() as conn:
        rows = [r[0] for r in conn.execute(text(
            "SELECT detail FROM audit_events WHERE event = 'audit.restore'"))]
    engine.dispose()
    return rows


def test_the_database_password_never_reaches_a_command_line() -> None:
    """``pg_dump``/``pg_restore`` get the password in ``PGPASSWORD``: ``ps`` shows argv."""
    from sqlalchemy.engine import make_url

    from authgate.cli.backup import _libpq

    url = make_url("postgresql+psycopg://gate:s%40cret@db.city.test:5433/authgate?sslmode=require")
    assert _libpq(url) == "postgresql://gate@db.city.test:5433/authgate?sslmode=require"
    assert url.password == "s@cret"
