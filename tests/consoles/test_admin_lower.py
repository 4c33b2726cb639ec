"""Issue 14, lower findings in the admin console: a code revocation is scoped to the user in
the URL, and banners come from a fixed set of messages (a link cannot make the console say
an arbitrary sentence)."""
from __future__ import annotations

from datetime import timedelta

import pytest

from authgate.core.values import Level, RequestMeta
from tests.conftest import session_cookie
from tests.consoles.test_admin_console import csrf, events


@pytest.fixture
def admin(client, services):  # type: ignore[no-untyped-def]
    session_cookie(client, services, "adam", Level.PHISHING_RESISTANT)
    return client


def _code_id(services, username: str) -> str:  # type: ignore[no-untyped-def]
    services.mfa.enrolment.issue(username=username, issued_by="adam", ttl=timedelta(hours=1),
                                 meta=RequestMeta(), reason="test")
    [row] = services.mfa.enrolment.codes_for(username)
    return str(row.id)


def test_revoke_code_refuses_another_users_code(admin, services) -> None:  # type: ignore[no-untyped-def]
    bobs = _code_id(services, "bob")
    page = admin.get("/admin/users/alice").get_data(as_text=True)
    r = admin.post(f"/admin/users/alice/codes/{bobs}/revoke",
                   data={"csrf_token": csrf(page), "reason": "cleaning up"})
    assert r.status_code == 303 and r.headers["Location"].endswith("?error=not_users_code")
    [bob_row] = services.mfa.enrolment.codes_for("bob")
    assert bob_row.revoked_at is None  # bob's code still works
    row = events(services, "enrol.code_revoked")[-1]
    assert (row["outcome"], row["reason"], row["username"]) == (
        "failure", "other_users_code", "alice")
    page = admin.get(r.headers["Location"]).get_data(as_text=True)
    assert "That code is not a live enrolment code of this user." in page


def test_revoke_code_of_the_user_in_the_url_works(admin, services) -> None:  # type: ignore[no-untyped-def]
    alices = _code_id(services, "alice")
    page = admin.get("/admin/users/alice").get_data(as_text=True)
    r = admin.post(f"/admin/users/alice/codes/{alices}/revoke",
                   data={"csrf_token": csrf(page), "reason": "not needed"})
    assert r.headers["Location"].endswith("?done=code_revoked")
    [row] = services.mfa.enrolment.codes_for("alice")
    assert row.revoked_at is not None
    assert "Enrolment code revoked." in admin.get(r.headers["Location"]).get_data(as_text=True)


@pytest.mark.parametrize("path", ["/admin/users/alice", "/admin/bans"])
@pytest.mark.parametrize("param", ["done", "error"])
def test_banners_never_echo_the_query_string(admin, path: str, param: str) -> None:  # type: ignore[no-untyped-def]
    crafted = "Your account is compromised: call 555-0100 now"
    page = admin.get(path, query_string={param: crafted}).get_data(as_text=True)
    assert "555-0100" not in page and 'class="success"' not in page \
        and 'class="alert"' not in page


def test_known_banner_keys_show_their_fixed_text(admin) -> None:  # type: ignore[no-untyped-def]
    page = admin.get("/admin/users/alice?done=sessions_ended&count=3").get_data(as_text=True)
    assert "3 session(s) ended." in page
    for count in ("", "-1", "3 sessions, call 555-0100", "1234567"):
        page = admin.get("/admin/users/alice", query_string={
            "done": "sessions_ended", "count": count}).get_data(as_text=True)
        assert "session(s) ended" not in page and "555-0100" not in page
    page = admin.get("/admin/bans?error=reason").get_data(as_text=True)
    assert "Give a reason: it goes to the audit trail." in page


def test_account_notice_is_fixed_text(client, services) -> None:  # type: ignore[no-untyped-def]
    session_cookie(client, services, "alice", Level.MFA)
    page = client.get("/account?done=Call+555-0100").get_data(as_text=True)
    assert "555-0100" not in page
