"""The storage contract, run against SQLite and PostgreSQL alike."""
from __future__ import annotations

import dataclasses
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, inspect

from authgate.core.errors import StorageError
from authgate.core.values import AuditEvent, Level, Outcome, SessionRecord
from authgate.storage.engine import current_revision, head_revision
from authgate.storage.sql_audit import SqlAuditStore
from authgate.storage.sql_sessions import SqlSessionStore
from authgate.storage.tables import metadata

T0 = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)


def record(id_hash: str = "a" * 64, username: str = "alice", **kw: object) -> SessionRecord:
    base = SessionRecord(
        id_hash=id_hash, username=username, groups=frozenset({"City-Staff", "Zoë's team"}),
        level=Level.MFA, created_at=T0, auth_time=T0, last_seen=T0,
        expires_at=T0 + timedelta(hours=12), client_ip="2001:db8::7", user_agent="UA/1",
        display_name="Alice Zoë", email="alice@city.test", stable_id="guid", source="ldap",
        refreshed_at=None, data={"k": "v"})
    return dataclasses.replace(base, **kw)  # type: ignore[arg-type]


def test_migrated_schema_matches_metadata(engine: Engine) -> None:
    assert current_revision(engine) == head_revision(str(engine.url))
    inspector = inspect(engine)
    for table in metadata.sorted_tables:
        live = {c["name"] for c in inspector.get_columns(table.name)}
        assert live == {c.name for c in table.columns}, table.name


def test_session_round_trip_exact(engine: Engine) -> None:
    store = SqlSessionStore(engine)
    store.add(record())
    assert store.get("a" * 64) == record()
    assert store.get("b" * 64) is None


def test_session_touch_update_replace_delete(engine: Engine) -> None:
    store = SqlSessionStore(engine)
    store.add(record())
    store.touch("a" * 64, T0 + timedelta(minutes=5))
    assert store.get("a" * 64).last_seen == T0 + timedelta(minutes=5)  # type: ignore[union-attr]
    store.update(record(level=Level.PHISHING_RESISTANT, refreshed_at=T0))
    assert store.get("a" * 64).level is Level.PHISHING_RESISTANT  # type: ignore[union-attr]
    assert store.replace("a" * 64, record(id_hash="c" * 64))
    assert store.get("a" * 64) is None and store.get("c" * 64) is not None
    assert not store.replace("a" * 64, record(id_hash="d" * 64))
    assert store.get("d" * 64) is None
    assert store.delete("c" * 64) and not store.delete("c" * 64)


def test_sessions_per_user_and_purge(engine: Engine) -> None:
    store = SqlSessionStore(engine)
    store.add(record("1" * 64))
    store.add(record("2" * 64, last_seen=T0 + timedelta(minutes=1)))
    store.add(record("3" * 64, username="bob", expires_at=T0))
    assert [r.id_hash for r in store.list_for_user("alice")] == ["2" * 64, "1" * 64]
    assert store.purge_expired(T0) == 1
    assert store.delete_for_user("alice") == 2
    assert store.list_for_user("alice") == []


def test_sessions_end_all_but_one_or_everyone(engine: Engine) -> None:
    store = SqlSessionStore(engine)
    for n, user in enumerate(("alice", "alice", "alice", "bob"), start=1):
        store.add(record(str(n) * 64, username=user))
    assert store.delete_except("alice", keep_id_hash="2" * 64) == 2
    assert [r.id_hash for r in store.list_for_user("alice")] == ["2" * 64]
    assert store.delete_except("alice", keep_id_hash=None) == 1
    assert store.get("4" * 64) is not None
    assert store.delete_all() == 1 and store.get("4" * 64) is None


def test_replace_is_atomic_under_races(engine: Engine) -> None:
    """Two concurrent rotations of one session: exactly one wins."""
    store = SqlSessionStore(engine)
    store.add(record())
    results: list[bool] = []
    def rotate(n: int) -> None:
        try:
            results.append(store.replace("a" * 64, record(id_hash=str(n) * 64)))
        except StorageError:
            results.append(False)
    threads = [threading.Thread(target=rotate, args=(n,)) for n in range(2, 8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(True) == 1


def test_audit_append_and_query(engine: Engine) -> None:
    store = SqlAuditStore(engine)
    ids = [store.append(AuditEvent(event="verify", outcome=Outcome.ALLOW, username=u,
                                   host="a.city.test", detail=(("k", "v"),),
                                   time=T0 + timedelta(seconds=i)))
           for i, u in enumerate(["alice", "bob", "alice"])]
    assert ids == sorted(ids)
    rows = list(store.query(username="alice"))
    assert [r.id for r in rows] == [ids[0], ids[2]]
    assert rows[0].time == T0 and rows[0].event.detail == (("k", "v"),)
    assert [r.id for r in store.query(since=T0 + timedelta(seconds=1))] == ids[1:]
    assert [r.id for r in store.query(until=T0 + timedelta(seconds=1))] == ids[:1]
    assert len(list(store.query(limit=2))) == 2


def test_audit_query_streams_in_batches(engine: Engine) -> None:
    store = SqlAuditStore(engine)
    for i in range(2345):
        store.append(AuditEvent(event="e", outcome=Outcome.INFO,
                                time=T0 + timedelta(microseconds=i)))
    assert sum(1 for _ in store.query()) == 2345


def test_naive_time_refused(engine: Engine) -> None:
    with pytest.raises(ValueError):
        SqlAuditStore(engine).append(AuditEvent(event="e", outcome=Outcome.INFO,
                                                time=datetime(2026, 1, 1)))


def test_database_errors_become_storage_error(engine: Engine) -> None:
    store = SqlSessionStore(engine)
    store.add(record())
    with pytest.raises(StorageError):
        store.add(record())  # duplicate primary key
