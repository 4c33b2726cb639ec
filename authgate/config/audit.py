"""Audit trail settings (docs/audit.md): chain keys, checkpoints, SIEM sinks, retention.

Added to ``Settings`` as ``audit: AuditSettings``. The HMAC chain key itself stays
``secrets.audit_key``; earlier keys are listed here so old records keep verifying after a
rotation (cryptography's MultiFernet idea). The Ed25519 signing key lives in a file that
only authgate reads; auditors get the public key.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Literal

from authgate.config.secret import Secret

Facility = Literal["kern", "user", "auth", "authpriv", "daemon", "local0", "local1", "local2",
                   "local3", "local4", "local5", "local6", "local7"]


@dataclass(frozen=True)
class SinkSettings:
    """One SIEM destination. ``syslog``: RFC 5424 over UDP (RFC 5426) or TCP with
    octet-counting framing (RFC 6587); ``jsonl``: one JSON object per line appended to
    ``path``; ``stdout``: JSON lines on standard output (containers)."""

    type: Literal["syslog", "jsonl", "stdout"] = "stdout"
    transport: Literal["udp", "tcp"] = "udp"
    host: str = "127.0.0.1"
    port: int = 514
    facility: Facility = "authpriv"
    app_name: str = "authgate"
    #: RFC 5424 SD-ID (``name@PEN``; 32473 is the documentation PEN of RFC 5612)
    sd_id: str = "audit@32473"
    path: str = ""
    #: seconds to wait for a TCP connect or send before the message is retried
    timeout: float = 2.0


@dataclass(frozen=True)
class DeliverySettings:
    """How records reach the sinks from the database (docs/audit.md, "SIEM streaming")."""

    #: seconds between looks for records other workers and instances wrote (a record this
    #: process writes wakes its deliverer at once)
    poll_interval: float = 1.0
    #: how long a deliverer's claim on a sink lasts without renewal; another worker or
    #: instance takes over this long after a holder died without releasing it
    lease: timedelta = timedelta(seconds=15)
    #: PostgreSQL only: seconds a record id must have been visible before it is delivered,
    #: so a lower id that commits a little later is not passed over (ids are taken at
    #: insert, transactions commit in any order); SQLite commits in id order
    settle: float = 2.0
    #: ``/readyz`` reports a sink degraded once its oldest undelivered record is this old
    degraded_after: timedelta = timedelta(minutes=5)
    #: records per send
    batch: int = 500
    #: longest wait between attempts while a sink is down (seconds)
    max_backoff: float = 5.0


@dataclass(frozen=True)
class AuditSettings:
    #: PEM file with the Ed25519 private key that signs checkpoints and export manifests
    #: (``authgate audit keygen``); unset → checkpoints are HMAC'd with the audit key only
    signing_key_file: str = ""
    #: PEM public keys of earlier signing keys, still trusted for verification
    trusted_public_keys: tuple[str, ...] = ()
    #: earlier ``secrets.audit_key`` values, for verifying records written before a rotation
    previous_keys: tuple[Secret, ...] = ()
    #: a signed checkpoint after this many records of a chain ...
    checkpoint_every: int = 1000
    #: ... or when a record is written this long after the previous checkpoint
    checkpoint_interval: timedelta = timedelta(minutes=5)
    #: chains (writer lanes) per process: each has its own lock and database connection
    writer_lanes: int = 1
    #: obsolete: sinks no longer buffer in memory (they read the database); kept so that
    #: existing configuration files still load
    buffer_size: int = 10000
    sinks: tuple[SinkSettings, ...] = ()
    delivery: DeliverySettings = field(default_factory=DeliverySettings)
    #: ``authgate audit purge`` default age (ASVS 7.x retention; city policy: 400 days)
    retention: timedelta = timedelta(days=400)
    #: rows per batch when streaming exports and verification (constant memory)
    batch_size: int = 5000
    #: append-only copy of every signed checkpoint outside the database: a file, or a
    #: directory (``checkpoints.jsonl`` inside it), ideally on another host; a relative
    #: path is beside the configuration file. ``audit verify --witness`` checks against it
    witness: str = ""


def witness_findings(audit: AuditSettings, storage_url: str) -> list[tuple[str, str]]:
    """``(severity, message)`` for ``check-config``: an unwritable witness is an error (no
    checkpoint would leave the host); one beside the SQLite database is a warning (whoever
    can replace the database can replace it too). Not a load error: a share that is down
    at start must not stop the gateway (the writes are retried)."""
    import os
    from pathlib import Path

    if not audit.witness:
        return [("warning", "audit.witness: not set; a rollback or a wiped database is "
                            "detected only by the SIEM copy (docs/audit.md, Witness)")]
    target = Path(audit.witness)
    folder = target if target.is_dir() else target.parent
    found = []
    if not os.access(target if target.exists() else folder, os.W_OK):
        found.append(("error", f"audit.witness: {target} is not writable"))
    database = storage_url.split("///", 1)[1] if storage_url.startswith("sqlite:///") else ""
    if database and folder.resolve() == Path(database).resolve().parent:
        found.append(("warning", f"audit.witness: {target} is in the database's directory; "
                                 "keep it on another host or share"))
    return found



__all__ = ["AuditSettings", "DeliverySettings", "SinkSettings", "witness_findings"]
