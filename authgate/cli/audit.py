"""``authgate audit``: verify the trail, export it, purge old records, make signing keys.

Exit status of ``verify``: 0 intact, 1 damaged (the first bad record and the kind of damage
are printed), 2 cannot verify (configuration, missing key, database down).
"""
from __future__ import annotations

import getpass
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import click

from authgate.audit.errors import AuditError
from authgate.cli.audit_verify import could_not_check, report, verify_database, verify_export_file
from authgate.composition.audit import (
    build_audit_log,
    keyring_for,
    sink_lags,
    trusted_keys_for,
)
from authgate.config.loader import parse_duration
from authgate.core.clock import SystemClock
from authgate.core.errors import AuthgateError
from authgate.storage.audit_rows import AuditFilter
from authgate.storage.engine import make_engine


def _when(value: str | None) -> datetime | None:
    """``2026-01-31`` or an ISO 8601 time; naive values are UTC."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise click.BadParameter(f"not a date or ISO 8601 time: {value}") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@contextmanager
def _audit_log(ctx: click.Context) -> Iterator[Any]:
    """This command's audit log (its own chain, closed on the way out)."""
    settings = ctx.obj.settings
    engine = make_engine(settings.storage.url)
    try:
        try:
            log = build_audit_log(settings, engine, SystemClock(), close_on_exit=False)
        except AuthgateError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)
        try:
            yield log
        finally:
            log.close()
    finally:
        engine.dispose()


@click.group("audit")
def audit_group() -> None:
    """The tamper-evident audit trail (docs/audit.md)."""


@audit_group.command("verify")
@click.option("--since", help="Only records at or after this date/time (UTC).")
@click.option("--until", help="Only records before this date/time (UTC).")
@click.option("--export", "export_file", type=click.Path(exists=True, dir_okay=False),
              help="Verify an exported file offline instead of the database.")
@click.option("--public-key", "public_keys", multiple=True,
              type=click.Path(exists=True, dir_okay=False),
              help="A trusted Ed25519 public key (PEM) for --export.")
@click.option("--jobs", type=int, default=os.cpu_count() or 1, show_default=True)
@click.option("--witness", type=click.Path(exists=True),
              help="The witness file or directory (audit.witness): prove the database holds "
                   "every checkpoint it saw.")
@click.option("--anchor", "anchors", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="An anchor saved earlier (authgate audit anchor, or an export).")
@click.option("--json", "as_json", is_flag=True,
              help="Print the verdict as one JSON object (docs/audit.md, Reading a verdict).")
@click.pass_context
def verify_command(ctx: click.Context, since: str | None, until: str | None,
                   export_file: str | None, public_keys: tuple[str, ...], jobs: int,
                   witness: str | None, anchors: tuple[str, ...], as_json: bool) -> None:
    """Exit 0 intact; 1 damaged (the first bad record and the kind of damage); 2 could
    not check (configuration, keys, database)."""
    if export_file:
        verify_export_file(ctx.obj, export_file, public_keys, as_json=as_json)
        return
    settings = ctx.obj.settings
    try:
        trusted = trusted_keys_for(settings, extra_public_pems=tuple(
            Path(p).read_text() for p in public_keys))
    except (AuthgateError, OSError) as exc:
        report(could_not_check(exc), as_json=as_json)
    report(verify_database(settings, trusted, _when(since), _when(until), jobs,
                             witness=witness, anchors=anchors), as_json=as_json)


@audit_group.command("export")
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl"]), default="jsonl")
@click.option("--since")
@click.option("--until")
@click.option("--user", default="")
@click.option("--app", default="", help="Application host, e.g. wiki.city.test")
@click.option("--event", default="")
@click.option("--outcome", default="")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="File (default stdout).")
@click.option("--jobs", type=click.IntRange(min=1), default=os.cpu_count() or 1,
              show_default=True, help="Worker processes rendering the records.")
@click.pass_context
def export_command(ctx: click.Context, fmt: str, since: str | None, until: str | None,
                   user: str, app: str, event: str, outcome: str, output: str | None,
                   jobs: int) -> None:
    """Stream matching records with a signed manifest; the export is itself audited.
    A file appears (mode 0600) only once it is complete."""
    from authgate.audit.export import Format, export_event
    from authgate.audit.export_parallel import write_export

    wanted = AuditFilter(since=_when(since), until=_when(until), username=user, host=app,
                         event=event, outcome=outcome)
    chosen = cast(Format, fmt)
    with _audit_log(ctx) as log:
        log.record(export_event(wanted, chosen, via="cli", username=getpass.getuser()))
        store, signer = log.store, log.signer
        if signer is None:
            raise click.ClickException("exports need a signer")
        with _export_target(output) as out:
            try:
                write_export(out, store, wanted, fmt=chosen, signer=signer,
                             generated_at=datetime.now(UTC), jobs=jobs,
                             batch=ctx.obj.settings.audit.batch_size)
            except AuditError as exc:
                raise click.ClickException(f"export failed: {exc}") from exc


@contextmanager
def _export_target(output: str | None) -> Iterator[Any]:
    """stdout, or a private temporary file beside ``output`` renamed over it on success
    (a failed export leaves nothing that looks like one)."""
    if not output:
        sys.stdout.flush()
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    import tempfile

    target = Path(output).resolve()
    fd, partial = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            yield out
        os.replace(partial, target)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise


@audit_group.command("purge")
@click.option("--older-than", "older_than", default=None,
              help="Age such as 400d (default: audit.retention).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def purge_command(ctx: click.Context, older_than: str | None, yes: bool) -> None:
    """Delete records older than the age; a signed checkpoint marks the cut."""
    from authgate.audit.retention import purge_before

    age = parse_duration(older_than) if older_than else ctx.obj.settings.audit.retention
    cut = datetime.now(UTC) - age
    if not yes:
        click.confirm(f"Delete audit records written before {cut.isoformat()}?", abort=True)
    with _audit_log(ctx) as log:
        result = purge_before(log, cut=cut)
        click.echo(f"purged {result.deleted} records from {result.chains} chains before "
                   f"{cut.isoformat()}"
                   + (f"; checkpoint #{result.checkpoint.seq}" if result.checkpoint else ""))


@audit_group.command("keygen")
@click.argument("path", type=click.Path(dir_okay=False))
def keygen_command(path: str) -> None:
    """Write a new Ed25519 signing key (mode 0600) and print its public key."""
    from authgate.audit.checkpoints import generate_key_file

    signer = generate_key_file(path)
    click.echo(f"key id: {signer.key_id}")
    click.echo(signer.public_pem(), nl=False)


@audit_group.command("public-key")
@click.pass_context
def public_key_command(ctx: click.Context) -> None:
    """Print the public key of the configured signing key (give it to auditors)."""
    from authgate.composition.audit import signer_for

    signer = signer_for(ctx.obj.settings.audit, keyring_for(ctx.obj.settings))
    click.echo(f"key id: {signer.key_id}")
    click.echo(signer.public_pem() or "(no signing key: checkpoints use the HMAC key)",
               nl=False)


@audit_group.command("user-hash")
@click.argument("name")
@click.pass_context
def user_hash_command(ctx: click.Context, name: str) -> None:
    """Print the pseudonym the trail keeps for NAME when the directory did not confirm it
    (unknown, refused before the bind): search or export with it (docs/audit.md
    "User names"). One line per chain key, the current one first."""
    from authgate.audit.names import NameMask
    from authgate.directory import normalise_username

    keyring = keyring_for(ctx.obj.settings)
    typed = normalise_username(name)
    for key_id in sorted(keyring.keys, key=lambda kid: kid != keyring.current_id):
        mask = NameMask.for_keyring(keyring, key_id)
        click.echo(f"{mask.pseudonym(typed)}" + ("" if key_id == keyring.current_id
                                                   else f"  (earlier key {key_id})"))


@audit_group.command("sinks")
@click.pass_context
def sinks_command(ctx: click.Context) -> None:
    """Each SIEM sink's delivery cursor, how far behind it is, and which process delivers
    (exit 2 when the database cannot be read)."""
    settings = ctx.obj.settings
    engine = make_engine(settings.storage.url)
    try:
        lags = sink_lags(settings, engine, SystemClock())
    except AuthgateError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    finally:
        engine.dispose()
    if not lags:
        click.echo("no SIEM sinks configured (audit.sinks)")
    for lag in lags:
        moved = lag.updated_at.isoformat(timespec="seconds") if lag.updated_at else "never"
        click.echo(f"{lag.sink}: delivered up to record {lag.last_id} ({moved}); "
                   f"{lag.behind} records behind, oldest {lag.seconds:.0f} s; "
                   f"deliverer {lag.owner or '-'}")


@audit_group.command("anchor")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="The anchor file to write (one witness line).")
@click.option("--existing", is_flag=True,
              help="Copy the newest stored checkpoint instead of signing a new one.")
@click.pass_context
def anchor_command(ctx: click.Context, output: str, existing: bool) -> None:
    """Write a signed checkpoint an auditor keeps; 'verify --anchor FILE' later proves the
    database still holds everything it covers (docs/audit.md, Witness)."""
    from authgate.audit.checkpoints import Checkpoint
    from authgate.audit.witness import witness_line

    with _audit_log(ctx) as log:
        if existing:
            row = log.store.last_checkpoint()
            if row is None:
                raise click.ClickException("no checkpoint yet")
            cp = Checkpoint(*row)
        else:
            cp = log.checkpoint(kind="manual")
        Path(output).write_bytes(witness_line(cp))
        click.echo(f"anchor: checkpoint #{cp.seq} ({cp.key_id}) written to {output}")
