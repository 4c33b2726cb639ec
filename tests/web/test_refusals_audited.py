"""Every refused page request leaves an audit record (outside attack on #14's stack: CSRF
failures, malformed or oversized bodies, a typed code where a key was needed and a denied
target in the login flow were answered 4xx but never audited)."""
from __future__ import annotations

from sqlalchemy import select

from authgate.core.values import Level
from authgate.storage.tables import audit_events
from tests.conftest import session_cookie


def _records(services, event: str) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    with services.engine.connect() as conn:
        return [(r.outcome, r.reason) for r in conn.execute(
            select(audit_events).where(audit_events.c.event == event))]


def test_a_post_without_its_csrf_token_is_refused_and_audited(client, services) -> None:  # type: ignore[no-untyped-def]
    r = client.post("/login", data={"username": "alice", "password": "x"})
    assert r.status_code == 400
    assert _records(services, "request.refused") == [("deny", "csrf_failed")]
    assert _records(services, "login.password") == []  # nothing reached the directory


def test_an_oversized_body_is_refused_and_audited(client, services) -> None:  # type: ignore[no-untyped-def]
    r = client.post("/login", data={"username": "a" * 40_000})
    assert r.status_code == 413
    assert _records(services, "request.refused") == [("deny", "http_413")]


def test_a_typed_code_where_a_key_is_needed_is_audited(client, services, auth) -> None:  # type: ignore[no-untyped-def]
    session_cookie(client, services, "alice", Level.PASSWORD)
    rd = "https%3A%2F%2Flocalhost%3A9091%2Fstrong%2F"
    r = client.post(f"/login/totp?rd={rd}", data={"csrf_token": auth.csrf(), "code": "123456"})
    assert r.status_code == 401
    assert ("failure", "strong_factor_required") in _records(services, "login.factor")


def test_a_denied_target_in_the_login_flow_is_audited(client, services) -> None:  # type: ignore[no-untyped-def]
    session_cookie(client, services, "alice", Level.MFA)
    r = client.get("/login/next?rd=https%3A%2F%2Flocalhost%3A9091%2Fforbidden%2Fx")
    assert r.status_code == 403
    assert _records(services, "login.next") == [("failure", "denied_by_rule")]
