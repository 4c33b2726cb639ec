"""``authgate audit verify`` against the configured database: the schema first, then the
records, then what a witness or anchor proves; one verdict (``audit/verdict.py``) printed
plainly or as JSON, exit 0 intact / 1 damaged / 2 could not check. The export branch
(``--export``) needs no configuration (``_verify_export_file``)."""
from __future__ import annotations

import getpass
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from authgate.audit.errors import AuditError, ChainDamage, TrailUnreadable
from authgate.composition.audit import build_audit_log, keyring_for, trusted_keys_for
from authgate.core.clock import SystemClock
from authgate.core.errors import AuthgateError
from authgate.core.values import AuditEvent, Outcome
from authgate.storage.engine import make_engine


def could_not_check(exc: Exception) -> Any:
    from authgate.audit.verdict import could_not_check

    return could_not_check(str(exc) or type(exc).__name__)


def verify_database(settings: Any, trusted: Any, since: datetime | None,
                     until: datetime | None, jobs: int, *, witness: str | None = None,
                     anchors: tuple[str, ...] = ()) -> Any:
    """Verify the configured database and record the run in it; a database this process
    may only read (an auditor's copy) is verified all the same."""
    from authgate.audit import verdict
    from authgate.storage.readonly import missing_file, read_only_engine

    if (missing := missing_file(settings.storage.url)) is not None:
        return verdict.could_not_check(missing)
    try:
        engine = read_only_engine(settings.storage.url) or make_engine(settings.storage.url)
    except (AuthgateError, OSError) as exc:
        return could_not_check(exc)
    period = {"since": verdict.iso(since), "until": verdict.iso(until)}
    try:
        damaged = _schema_damage(engine)
        if damaged is not None:
            return verdict.damaged(damaged, period=period)
        log = build_audit_log(settings, engine, SystemClock(), close_on_exit=False)
        try:
            return _checked(log, settings, trusted, since, until, jobs, witness, anchors)
        except (ValueError, TypeError, OverflowError, RecursionError) as exc:
            found = TrailUnreadable(f"verification failed on a stored value "
                                    f"({type(exc).__name__}: {str(exc)[:120]})")
            _record_run(log, _verify_event(Outcome.FAILURE, found.kind, str(found)[:400]))
            return verdict.damaged(found, period=period)
        except ChainDamage as exc:
            _record_run(log, _verify_event(Outcome.FAILURE, exc.kind, str(exc)[:400]))
            return verdict.damaged(exc, period=period)
        finally:
            log.close()
    except AuthgateError as exc:
        return could_not_check(exc)
    finally:
        engine.dispose()


def _checked(log: Any, settings: Any, trusted: Any, since: datetime | None,
             until: datetime | None, jobs: int, witness: str | None,
             anchors: tuple[str, ...]) -> Any:
    """The records, then the witness: intact, or ``ChainDamage``."""
    from authgate.audit import verdict
    from authgate.audit.verify import verify_store

    trail = verify_store(log.store, keyring=keyring_for(settings), trusted=trusted,
                         since=since, until=until, jobs=jobs,
                         batch=settings.audit.batch_size, now=datetime.now(UTC))
    seen = _witnessed(log.store, trusted, witness, anchors)
    found = verdict.intact(trail, period=verdict.period_of(log.store, since=since,
                                                           until=until),
                           witness=seen, bound=_bound(settings))
    _record_run(log, _verify_event(Outcome.SUCCESS, "intact", f"{trail.records} records"))
    return found


def _schema_damage(engine: Any) -> ChainDamage | None:
    """A dropped or renamed audit table or column is damage, found before any query
    fails on it (which would read as "could not check")."""
    from authgate.audit.errors import SchemaAltered, TrailWiped
    from authgate.storage.audit_schema import audit_schema_problem

    problem = audit_schema_problem(engine)
    if problem is None:
        return None
    kind, detail = problem
    return (TrailWiped if kind == "wiped" else SchemaAltered)(detail)


def _record_run(log: Any, event: AuditEvent) -> None:
    """Record this verification in the trail it checked; a read-only copy cannot take it,
    which never changes the verdict."""
    try:
        log.record(event)
    except AuthgateError as exc:
        click.echo(f"note: could not record this run in the audit trail ({exc})", err=True)


def report(found: Any, *, as_json: bool) -> None:
    """Print the verdict (JSON on stdout with --json) and exit with its status."""
    from authgate.audit.verdict import plain

    if as_json:
        click.echo(found.as_json())
    else:
        for line in plain(found):
            click.echo(line, err=found.exit_code != 0)
    sys.exit(found.exit_code)


def _verify_event(outcome: Outcome, reason: str, result: str) -> AuditEvent:
    return AuditEvent(event="audit.verify", outcome=outcome, reason=reason,
                      username=getpass.getuser(), detail=(("result", result),))


def verify_export_file(obj: Any, export_file: str, public_keys: tuple[str, ...], *,
                        as_json: bool) -> None:
    """``verify --export``: needs no configuration and no secret (issue 16 item 3): the
    ``--public-key`` files are enough. With a configuration, its trusted keys count too,
    and its chain keys (when set) check each record's MAC. Exit 0 / 1 / 2."""
    import json
    from dataclasses import asdict

    from authgate.audit.export_offline import CannotCheck, ExportReport, report_text
    from authgate.audit.export_verify import check_export_file

    try:
        pems = tuple(Path(p).read_text() for p in public_keys)
        trusted, keys = _export_keys(obj, pems)
        code, report = check_export_file(export_file, trusted=trusted, chain_keys=keys)
    except (OSError, ValueError, CannotCheck, AuthgateError) as exc:
        code, report = 2, ExportReport(verdict="cannot_check", reason=str(exc))
    click.echo(json.dumps(asdict(report)) if as_json else report_text(report),
               err=code != 0 and not as_json)
    if code:
        sys.exit(code)


def _export_keys(obj: Any, pems: tuple[str, ...]) -> tuple[Any, Any]:
    """The trusted keys and chain keys for an export check: the public keys alone when no
    configuration is named (``--config`` / ``AUTHGATE_CONFIG``) or it holds no chain key."""
    from authgate.audit.checkpoints import TrustedKeys

    if obj.config_path is None:
        return TrustedKeys.build(keyring=None, signer=None, public_pems=pems), None
    settings = obj.settings
    try:
        return trusted_keys_for(settings, extra_public_pems=pems), keyring_for(settings).keys
    except AuditError:
        return TrustedKeys.build(keyring=None, signer=None, public_pems=pems), None


def _witnessed(store: Any, trusted: Any, witness: str | None,
               anchors: tuple[str, ...]) -> Any:
    """The witness check (docs/audit.md, Witness); None when neither was given."""
    from authgate.audit.witness import check_witness, read_anchor, read_witness

    if not witness and not anchors:
        return None
    lines = [*(read_witness(witness) if witness else ()),
             *(line for a in anchors for line in read_anchor(a))]
    if not lines:  # asked for, and proving nothing: never an intact that looks witnessed
        raise AuditError(f"the witness {witness or ' '.join(anchors)} holds no checkpoint: "
                         "nothing to check the database against")
    return check_witness(store, trusted=trusted, witnessed=lines)


def _bound(settings: Any) -> str:
    a = settings.audit
    return (f"the gateway signs a checkpoint every {a.checkpoint_every} records of a chain "
            f"and at most {a.checkpoint_interval} after any record (a timer, also when idle)")
