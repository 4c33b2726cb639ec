"""Ending sessions at the user's request (``sessions.ending``): logout, one, all others."""
from __future__ import annotations

from sqlalchemy import select

from authgate.core.values import Level, RequestMeta
from authgate.storage.tables import audit_events

META = RequestMeta(client_ip="192.0.2.7", user_agent="test", request_id="r1")


def start(services, username: str = "alice"):  # type: ignore[no-untyped-def]
    return services.sessions.start(services.directory.lookup(username), level=Level.MFA,
                                   client_ip="192.0.2.7", user_agent="test").record


def ended_records(services) -> list[tuple[str, str, str]]:  # type: ignore[no-untyped-def]
    with services.engine.connect() as conn:
        return [(r.username, r.reason, r.detail) for r in conn.execute(
            select(audit_events).where(audit_events.c.event == "session.ended_by_user"))]


def test_logout_ends_the_session_and_is_audited(services) -> None:  # type: ignore[no-untyped-def]
    mine = start(services)
    services.session_ending.logout(mine, meta=META)
    assert services.sessions.sessions_of("alice") == []
    with services.engine.connect() as conn:
        row = conn.execute(select(audit_events).where(audit_events.c.event == "logout")).one()
    assert (row.username, row.reason, row.request_id) == ("alice", "user_logout", "r1")


def test_end_others_keeps_the_one_asking(services) -> None:  # type: ignore[no-untyped-def]
    mine, other, third, bobs = start(services), start(services), start(services), start(
        services, "bob")
    assert services.session_ending.end_others(mine, meta=META) == 2
    assert [s.id_hash for s in services.sessions.sessions_of("alice")] == [mine.id_hash]
    assert {s.id_hash for s in services.sessions.sessions_of("bob")} == {bobs.id_hash}
    assert other.id_hash != third.id_hash
    [(user, reason, detail)] = ended_records(services)
    assert (user, reason) == ("alice", "others") and "2" in str(detail)


def test_end_one_never_reaches_another_users_session(services) -> None:  # type: ignore[no-untyped-def]
    mine, bobs = start(services), start(services, "bob")
    assert not services.session_ending.end_one(mine, id_hash=bobs.id_hash, meta=META)
    assert len(services.sessions.sessions_of("bob")) == 1
    assert ended_records(services) == []
    other = start(services)
    assert services.session_ending.end_one(mine, id_hash=other.id_hash, meta=META)
    assert [s.id_hash for s in services.sessions.sessions_of("alice")] == [mine.id_hash]
    assert [(u, r) for u, r, _ in ended_records(services)] == [("alice", "one")]
