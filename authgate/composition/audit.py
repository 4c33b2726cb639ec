"""Builds the audit trail from settings: the one place that picks keys, signer and sinks."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Engine

from authgate.audit.chain import Keyring
from authgate.audit.checkpoints import (
    Ed25519Signer,
    HmacSigner,
    Signer,
    TrustedKeys,
    retired_keys_path,
)
from authgate.audit.delivery import SinkLag, sink_lag
from authgate.audit.log import AuditLog, close_at_exit
from authgate.audit.sinks import NoSinks, SinkFanout, build_sink
from authgate.audit.witness_writer import WitnessWriter
from authgate.config import Settings
from authgate.config.audit import AuditSettings
from authgate.config.loader import DEMO_SECRET_PREFIX
from authgate.core.clock import Clock
from authgate.core.values import AuditEvent, Outcome
from authgate.storage.interfaces import AuditStore
from authgate.storage.sql_audit import SqlAuditStore
from authgate.storage.sql_sink_cursors import SqlSinkCursorStore

#: the labelled demo chain key (refused outside demo mode by the config loader's rules)
DEMO_AUDIT_KEY = DEMO_SECRET_PREFIX + "audit-key-do-not-use-in-production"


def keyring_for(settings: Settings) -> Keyring:
    """The chain keys; ``AuditKeyMissing`` when ``secrets.audit_key`` is unset (demo mode
    uses the labelled demo key, as it does for the session key)."""
    secret = settings.secrets.audit_key
    value = secret.reveal() if secret else None
    if value is None and settings.mode == "demo":
        value = DEMO_AUDIT_KEY
    # earlier keys: the key file's later lines (``keys rotate audit``) and previous_keys
    previous = [*(secret.older() if secret else ()),
                *(k.reveal() for k in settings.audit.previous_keys)]
    return Keyring.from_secrets(value, previous)


def signer_for(audit: AuditSettings, keyring: Keyring) -> Signer:
    if audit.signing_key_file:
        return Ed25519Signer.from_file(audit.signing_key_file)
    return HmacSigner(keyring)


def trusted_keys_for(settings: Settings, *, extra_public_pems: tuple[str, ...] = ()
                     ) -> TrustedKeys:
    """Every key whose signatures verification accepts: the configured ones only."""
    audit = settings.audit
    keyring = keyring_for(settings)
    signer = signer_for(audit, keyring)
    pems = [Path(p).read_text() for p in audit.trusted_public_keys]
    retired = retired_keys_path(audit.signing_key_file) if audit.signing_key_file else None
    if retired is not None and retired.is_file():  # ``keys rotate signing`` keeps them here
        pems.append(retired.read_text())
    return TrustedKeys.build(keyring=keyring, signer=signer, public_pems=[*pems,
                                                                          *extra_public_pems])


def build_audit_store(engine: Engine) -> AuditStore:
    """The one place that picks the audit store's implementation."""
    return SqlAuditStore(engine)


def build_sinks(audit: AuditSettings, engine: Engine, store: AuditStore, clock: Clock
                ) -> SinkFanout:
    """The SIEM sinks, delivering from the database through durable cursors. The settle
    window applies where ids can commit out of order (PostgreSQL; SQLite serialises
    writers)."""
    settle = 0.0 if engine.dialect.name == "sqlite" else audit.delivery.settle
    return SinkFanout(audit.sinks, store=store, cursors=SqlSinkCursorStore(engine),
                      clock=clock, options=audit.delivery, settle=settle)


def sink_lags(settings: Settings, engine: Engine, clock: Clock) -> list[SinkLag]:
    """Each configured sink's cursor and lag, without starting a deliverer (the CLI)."""
    store, cursors = build_audit_store(engine), SqlSinkCursorStore(engine)
    newest, now = store.max_id(), clock.now()
    return [sink_lag(build_sink(s).name, store=store, cursors=cursors, now=now,
                     newest=newest) for s in settings.audit.sinks]


def build_audit_log(settings: Settings, engine: Engine, clock: Clock, *,
                    close_on_exit: bool = True) -> AuditLog:
    """The audit trail ``composition.root`` and the CLI use: the store, the chain keys,
    always a signer (checkpoints and export manifests need one), and the SIEM sinks."""
    audit = settings.audit
    keyring = keyring_for(settings)
    store = build_audit_store(engine)
    sinks = build_sinks(audit, engine, store, clock) if audit.sinks else NoSinks()
    witness = WitnessWriter(audit.witness) if audit.witness else None
    log = AuditLog(store, clock, keyring=keyring,
                   signer=signer_for(audit, keyring), sinks=sinks,
                   checkpoint_every=audit.checkpoint_every,
                   checkpoint_interval=audit.checkpoint_interval, lanes=audit.writer_lanes,
                   witness=witness)
    if witness is not None:
        witness.on_change = witness_outage_recorder(log)
    if close_on_exit:
        close_at_exit(log)
    return log


def witness_outage_recorder(log: AuditLog) -> Callable[[bool, str], None]:
    """One ``audit.witness`` record when the witness stops taking checkpoints, one when it
    takes them again (not one per failed write)."""
    def record(ok: bool, error: str) -> None:
        log.record(AuditEvent(
            event="audit.witness", outcome=Outcome.INFO if ok else Outcome.ERROR,
            reason="witness_restored" if ok else "witness_write_failed",
            detail=(("witness", log.witness.path if log.witness else ""),
                    ("error", error[:200]))))
    return record
