"""The admin console through the pages: roles kept apart, step-up, every action audited."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from authgate.core.values import Level, RequestMeta
from authgate.storage.tables import audit_events
from tests.conftest import session_cookie


def csrf(page: str) -> str:
    return re.search(r'data-csrf="([^"]+)"', page).group(1)


def events(services, name: str):  # type: ignore[no-untyped-def]
    with services.engine.connect() as conn:
        return conn.execute(select(audit_events).where(audit_events.c.event == name)
                            .order_by(audit_events.c.id)).mappings().all()


@pytest.fixture
def admin(client, services):  # type: ignore[no-untyped-def]
    session_cookie(client, services, "adam", Level.PHISHING_RESISTANT)
    return client


@pytest.mark.parametrize("user,level", [("alice", Level.PHISHING_RESISTANT),
                                        ("audrey", Level.PHISHING_RESISTANT)])
def test_non_admins_get_403(client, services, user, level) -> None:  # type: ignore[no-untyped-def]
    session_cookie(client, services, user, level)
    for path in ("/admin", "/admin/users/alice", "/admin/bans", "/admin/policy"):
        assert client.get(path).status_code == 403, path
    assert events(services, "console.access")[-1]["username"] == user


def test_anonymous_is_sent_to_login(client) -> None:  # type: ignore[no-untyped-def]
    r = client.get("/admin")
    assert r.status_code == 303 and r.headers["Location"].startswith("/login?rd=")


def test_admin_at_mfa_is_asked_to_step_up(client, services) -> None:  # type: ignore[no-untyped-def]
    session_cookie(client, services, "adam", Level.MFA)
    r = client.get("/admin")
    assert r.status_code == 303 and r.headers["Location"].startswith("/login?rd=")
    r = client.get(r.headers["Location"])
    assert r.status_code == 303 and r.headers["Location"].startswith("/login/next")


def test_issue_code_shown_once_and_usable(admin, services) -> None:  # type: ignore[no-untyped-def]
    page = admin.get("/admin/users/alice").get_data(as_text=True)
    assert "Alice Liddell" in page and "No devices" in page
    r = admin.post("/admin/users/alice/codes", data={"csrf_token": csrf(page), "ttl": "1h"})
    assert "error=" in r.headers["Location"]  # no reason, no code
    r = admin.post("/admin/users/alice/codes", data={"csrf_token": csrf(page), "ttl": "1h",
                                                     "reason": "new phone, ID checked"})
    code = re.search(r'id="enrolment-code">([^<]+)<', r.get_data(as_text=True)).group(1)
    assert services.mfa.enrolment.redeem(username="alice", code=code, meta=RequestMeta(),
                                          regulator=services.regulator)
    issued = events(services, "enrol.code_issued")[-1]
    assert issued["username"] == "alice" and '"actor": "adam"' in issued["detail"]
    assert "new phone, ID checked" in issued["detail"]
    assert code not in repr(events(services, "enrol.code_issued"))


def test_reset_needs_reason_and_ends_the_users_sessions(admin, client, services) -> None:  # type: ignore[no-untyped-def]
    alice = services.sessions.start(services.directory.lookup("alice"), level=Level.MFA,
                                     client_ip="10.0.0.7", user_agent="alice's laptop")
    page = admin.get("/admin/users/alice").get_data(as_text=True)
    assert "10.0.0.7" in page
    r = admin.post("/admin/users/alice/factors/reset", data={"csrf_token": csrf(page),
                                                             "reason": ""})
    assert "error=" in r.headers["Location"]
    assert services.sessions.resolve(alice.token) is not None
    r = admin.post("/admin/users/alice/factors/reset",
                   data={"csrf_token": csrf(page), "reason": "lost phone, checked in person"})
    assert "done=" in r.headers["Location"]
    assert services.sessions.resolve(alice.token) is None
    row = events(services, "admin.factors_reset")[-1]
    assert '"actor": "adam"' in row["detail"] and "lost phone" in row["detail"]


def test_old_admin_login_must_sign_in_again_before_changes(admin, clock, services) -> None:  # type: ignore[no-untyped-def]
    page = admin.get("/admin/users/alice").get_data(as_text=True)
    clock.advance(minutes=14)
    admin.get("/admin")  # keep it from idling out
    clock.advance(minutes=2)
    r = admin.post("/admin/users/alice/sessions/end",
                   data={"csrf_token": csrf(page), "reason": "routine check"})
    assert r.status_code == 303 and r.headers["Location"].startswith("/login?reauth=1")
    assert events(services, "admin.sessions_ended") == []


def test_end_all_sessions_needs_confirmation(admin, services) -> None:  # type: ignore[no-untyped-def]
    other = services.sessions.start(services.directory.lookup("bob"), level=Level.MFA,
                                    client_ip="10.0.0.8", user_agent="bob")
    page = admin.get("/admin").get_data(as_text=True)
    r = admin.post("/admin/sessions/end-all", data={"csrf_token": csrf(page),
                                                    "reason": "cookie leak", "confirm": "yes"})
    assert r.status_code == 400 and services.sessions.resolve(other.token) is not None
    r = admin.post("/admin/sessions/end-all", data={"csrf_token": csrf(page),
                                                    "reason": "cookie leak suspected",
                                                    "confirm": "END ALL SESSIONS"})
    assert r.status_code == 200 and services.sessions.resolve(other.token) is None
    assert '"severity": "high"' in events(services, "admin.all_sessions_ended")[-1]["detail"]


def test_policy_and_health_pages(admin, services) -> None:  # type: ignore[no-untyped-def]
    page = admin.get("/admin/policy").get_data(as_text=True)
    assert services.policies.current.digest in page and "demo-admin-console" in page
    page = admin.get("/admin/health").get_data(as_text=True)
    assert "Storage" in page and "Directory" in page
    assert admin.get("/admin/bans").status_code == 200


def test_a_passkey_sign_in_is_among_the_users_recent_sign_ins(admin, services) -> None:  # type: ignore[no-untyped-def]
    """A passkey sign-in leaves one record, ``login.passkey`` (a ``login.webauthn`` success
    no longer comes beside it, issue 20 item 1): the user's page lists it."""
    from tests.credentials.test_passkey_step_transaction import register, sign_in, signed

    key = register(services)
    sign_in(services, signed(services, key))
    page = admin.get("/admin/users/alice").get_data(as_text=True)
    recent = page[page.index("Recent sign-ins"):]
    assert "Passkey sign-in" in recent and "passkey uv" in recent
