"""Abandoned sessions and WebAuthn challenges do not pile up (review §6 #15): the use cases
purge expired rows every N writes, as regulation purges its counters."""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import Engine, func, select

from authgate.audit import AuditLog
from authgate.audit.chain import Keyring
from authgate.core.clock import FixedClock
from authgate.core.values import Identity, Level
from authgate.credentials.factor_audit import FactorAudit
from authgate.credentials.params import FactorParams
from authgate.credentials.webauthn import WebAuthnService
from authgate.sessions.service import SessionService
from authgate.storage.engine import make_engine, migrate
from authgate.storage.sql_audit import SqlAuditStore
from authgate.storage.sql_challenges import SqlChallengeStore
from authgate.storage.sql_credentials import SqlCredentialStore
from authgate.storage.sql_sessions import SqlSessionStore
from authgate.storage.tables_factors import challenges

ALICE = Identity("alice", "Alice", "alice@city.test", frozenset({"City-Staff"}), "file:alice")


def _engine(tmp_path: Path) -> Engine:
    url = f"sqlite:///{tmp_path / 'purge.db'}"
    migrate(url)
    return make_engine(url)


def test_expired_sessions_are_purged_every_n_starts(tmp_path: Path) -> None:
    clock = FixedClock()
    store = SqlSessionStore(_engine(tmp_path))
    service = SessionService(store, clock, idle_timeout=timedelta(minutes=30),
                             max_age=timedelta(hours=12), touch_interval=timedelta(seconds=30),
                             purge_every=3)

    def start() -> str:
        return service.start(ALICE, level=Level.PASSWORD, client_ip="10.0.0.1",
                             user_agent="UA").record.id_hash

    abandoned = start()
    clock.advance(hours=13)  # past max_age: the row is dead but still stored
    second = start()
    assert store.get(abandoned) is not None  # not yet: only every third start purges
    third = start()
    assert store.get(abandoned) is None
    assert store.get(second) is not None and store.get(third) is not None


def test_expired_challenges_are_purged_every_n_new_ones(tmp_path: Path) -> None:
    clock = FixedClock()
    engine = _engine(tmp_path)
    webauthn = WebAuthnService(
        store=SqlCredentialStore(engine), challenges=SqlChallengeStore(engine),
        params=lambda: FactorParams(challenge_ttl_seconds=120),
        record=FactorAudit(AuditLog(SqlAuditStore(engine), clock,
                                 keyring=Keyring.from_secrets("p" * 40)), clock),
        purge_every=3)

    def count() -> int:
        with engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(challenges)).scalar_one())

    for n in range(2):  # anonymous passkey options, never finished
        webauthn.begin_authentication(key=str(n) * 64, username=None, require_uv=False)
    clock.advance(minutes=3)
    assert count() == 2
    webauthn.begin_authentication(key="f" * 64, username=None, require_uv=False)
    assert count() == 1  # the third new challenge purged the two expired ones
