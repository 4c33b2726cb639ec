"""Audit fixtures: a sealed ``AuditLog`` on SQLite and PostgreSQL (the contract ``engine``)."""
from __future__ import annotations

from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine, text

from authgate.audit.chain import Keyring, seal
from authgate.audit.checkpoints import Ed25519Signer, TrustedKeys
from authgate.audit.log import AuditLog
from authgate.audit.verify import VerifiedTrail, verify_store
from authgate.core.clock import FixedClock
from authgate.core.values import AuditEvent, Outcome
from authgate.storage.audit_rows import SEALED_FIELDS
from authgate.storage.sql_audit import SqlAuditStore

AUDIT_SECRET = "a" * 40


@pytest.fixture
def keyring() -> Keyring:
    return Keyring.from_secrets(AUDIT_SECRET)


@pytest.fixture
def signer() -> Ed25519Signer:
    return Ed25519Signer(Ed25519PrivateKey.generate())


@pytest.fixture
def trusted(keyring: Keyring, signer: Ed25519Signer) -> TrustedKeys:
    return TrustedKeys.build(keyring=keyring, signer=signer)


class TickingClock(FixedClock):
    """Each reading is one millisecond after the previous one."""

    def now(self):  # type: ignore[no-untyped-def]
        self.advance(milliseconds=1)
        return super().now()


@pytest.fixture
def audit_log(engine: Engine, keyring: Keyring, signer: Ed25519Signer  # noqa: F811
              ) -> Iterator[AuditLog]:
    log = AuditLog(SqlAuditStore(engine), TickingClock(), keyring=keyring, signer=signer,
                   checkpoint_every=10_000)
    yield log
    log.sinks.close()


def event(n: int = 0, **kw: object) -> AuditEvent:
    base: dict[str, object] = dict(event="verify", outcome=Outcome.ALLOW, reason="allowed",
                                   username=f"user{n % 7}", client_ip="10.1.2.3",
                                   user_agent="UA/1", host="wiki.city.test", path=f"/p/{n}",
                                   method="GET", rule_id="staff", policy_digest="d" * 64,
                                   request_id=f"r{n}", detail=(("level", "mfa"),))
    base.update(kw)
    return AuditEvent(**base)  # type: ignore[arg-type]


def write(log: AuditLog, count: int) -> list[int]:
    return [log.record(event(n)) for n in range(count)]


def check(log: AuditLog, keyring: Keyring, trusted: TrustedKeys, **kw: object) -> VerifiedTrail:
    return verify_store(log.store, keyring=keyring, trusted=trusted, batch=7, **kw)  # type: ignore[arg-type]


def sql(engine: Engine, statement: str, **params: object) -> list[tuple]:  # noqa: F811
    with engine.begin() as conn:
        result = conn.execute(text(statement), params)
        return [tuple(r) for r in result] if result.returns_rows else []


def insert_sealed(engine: Engine, key: bytes, values: tuple[object, ...]) -> str:  # noqa: F811
    """A record written straight into the table, sealed with ``key`` (``SEALED_FIELDS``
    order): what a writer would have stored, or a forger holding the key; its MAC."""
    names = (*SEALED_FIELDS, "mac")
    mac = seal(key, values)
    sql(engine, f"INSERT INTO audit_events ({', '.join(names)}) VALUES "
        f"({', '.join(':' + n for n in names)})", **dict(zip(names, (*values, mac), strict=True)))
    return mac
