"""Session lifecycle with an injected clock: expiry, idle, rotation, revocation."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from authgate.core.clock import FixedClock
from authgate.core.values import Identity, Level
from authgate.sessions.service import SessionService, hash_token
from authgate.storage.engine import make_engine, migrate
from authgate.storage.sql_sessions import SqlSessionStore
from authgate.storage.tables import sessions as sessions_table

ALICE = Identity("alice", "Alice", "alice@city.test", frozenset({"City-Staff"}), "file:alice")


@pytest.fixture
def service(tmp_path, clock: FixedClock) -> SessionService:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 's.db'}"
    migrate(url)
    return SessionService(SqlSessionStore(make_engine(url)), clock,
                          idle_timeout=timedelta(minutes=30), max_age=timedelta(hours=12),
                          touch_interval=timedelta(seconds=30))


def start(service: SessionService):  # type: ignore[no-untyped-def]
    return service.start(ALICE, level=Level.PASSWORD, client_ip="10.0.0.1", user_agent="UA")


def test_token_is_random_long_and_not_stored(service: SessionService) -> None:
    a, b = start(service), start(service)
    assert a.token != b.token and len(a.token) >= 43  # 256 bits, base64url
    engine = service.store._engine  # type: ignore[attr-defined]
    with engine.connect() as conn:
        stored = [r[0] for r in conn.execute(select(sessions_table.c.id_hash))]
    assert a.token not in stored and hash_token(a.token) in stored


def test_resolve_idle_and_absolute_expiry(service: SessionService, clock: FixedClock) -> None:
    issued = start(service)
    clock.advance(minutes=29)
    assert service.resolve(issued.token) is not None  # touched now
    clock.advance(minutes=29)
    assert service.resolve(issued.token) is not None
    clock.advance(minutes=31)
    assert service.resolve(issued.token) is None  # idle
    issued = start(service)
    for _ in range(30):
        clock.advance(minutes=25)
        if service.resolve(issued.token) is None:
            break
    assert clock.now() - issued.record.created_at <= timedelta(hours=12, minutes=25)
    assert service.resolve(issued.token) is None  # absolute


def test_elevate_rotates_the_id(service: SessionService, clock: FixedClock) -> None:
    issued = start(service)
    clock.advance(seconds=5)
    raised = service.elevate(issued.record, level=Level.MFA)
    assert raised is not None and raised.token != issued.token
    assert service.resolve(issued.token) is None
    record = service.resolve(raised.token)
    assert record is not None and record.level is Level.MFA and record.auth_time == clock.now()
    assert service.elevate(issued.record, level=Level.MFA) is None  # old one is gone


def test_end_and_end_all(service: SessionService) -> None:
    a, b = start(service), start(service)
    assert service.end(a.record)
    assert service.resolve(a.token) is None and service.resolve(b.token) is not None
    assert service.end_all_for("alice") == 1
    assert service.resolve(b.token) is None


@pytest.mark.parametrize("token", ["", "x" * 65, "é" * 10, None])
def test_malformed_tokens_resolve_to_nothing(service: SessionService, token: str | None) -> None:
    assert service.resolve(token) is None
