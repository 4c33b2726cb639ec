"""The login pages: one generic failure, CSRF, id rotation, security headers, bad input."""
from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import select

from authgate.storage.tables import audit_events
from tests.conftest import ALICE_PASSWORD, pending_change


def last_audit(services):  # type: ignore[no-untyped-def]
    with services.engine.connect() as conn:
        return dict(conn.execute(select(audit_events).order_by(audit_events.c.id.desc())
                                 .limit(1)).mappings().one())


def test_wrong_password_and_unknown_user_look_the_same(auth, services) -> None:  # type: ignore[no-untyped-def]
    wrong = auth.login(password="wrong password")
    wrong_reason = last_audit(services)["reason"]
    unknown = auth.login(username="nobody", password="wrong password")
    unknown_reason = last_audit(services)["reason"]
    assert wrong.status_code == unknown.status_code == 401
    strip = lambda r: re.sub(r'(value|data-csrf|nonce)="[^"]*"', "", r.get_data(as_text=True))  # noqa: E731
    assert strip(wrong) == strip(unknown)
    assert (wrong_reason, unknown_reason) == ("invalid_credentials", "unknown_user")


def test_a_portal_record_names_the_page_it_answered(auth, services) -> None:  # type: ignore[no-untyped-def]
    """docs/audit.md: ``path`` and ``method`` hold the portal page for portal records (an
    outside test found them empty on sign-in records)."""
    auth.login(password="wrong password")
    record = last_audit(services)
    assert (record["event"], record["method"], record["path"]) == \
        ("login.password", "POST", "/login")
    assert record["host"] == ""  # ``host`` stays the protected app's, never the portal's


def test_disabled_account_told_to_contact_it_and_audited(auth, services) -> None:  # type: ignore[no-untyped-def]
    r = auth.login(username="carol", password="carol's long password")
    assert r.status_code == 403 and "contact" in r.get_data(as_text=True).lower()
    assert last_audit(services)["reason"] == "account_disabled"


def test_no_password_in_audit(auth, services) -> None:  # type: ignore[no-untyped-def]
    auth.login(password="hunter2-very-secret")
    auth.login()
    with services.engine.connect() as conn:
        dump = repr(conn.execute(select(audit_events)).all())
    assert "hunter2" not in dump and ALICE_PASSWORD not in dump


def test_csrf_required(client) -> None:  # type: ignore[no-untyped-def]
    r = client.post("/login", data={"username": "alice", "password": ALICE_PASSWORD})
    assert r.status_code == 400
    assert client.get_cookie("__Host-authgate_session") is None


def test_new_session_id_at_each_login(client, auth) -> None:  # type: ignore[no-untyped-def]
    auth.login()
    first = client.get_cookie("__Host-authgate_session").value
    auth.login()
    second = client.get_cookie("__Host-authgate_session").value
    assert first != second


def test_cookie_flags(auth) -> None:  # type: ignore[no-untyped-def]
    r = auth.login()
    cookie = r.headers["Set-Cookie"]
    assert cookie.startswith("__Host-authgate_session=")
    for flag in ("Secure", "HttpOnly", "SameSite=Lax", "Path=/"):
        assert flag in cookie
    assert "Domain=" not in cookie


def test_security_headers_on_pages(client) -> None:  # type: ignore[no-untyped-def]
    r = client.get("/login")
    csp = r.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp and "'nonce-" in csp
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Referrer-Policy"] == "no-referrer"
    assert "Strict-Transport-Security" not in r.headers
    https = client.get("/login", base_url="https://localhost:9091")
    assert https.headers["Strict-Transport-Security"].startswith("max-age=")


def test_bad_return_url_is_dropped_and_audited(client, auth, services) -> None:  # type: ignore[no-untyped-def]
    r = auth.login(rd="https://city.test@evil.example/")
    assert r.status_code == 303 and r.headers["Location"] == "/login/next"
    assert client.get("/login/next").headers["Location"] == "/"
    with services.engine.connect() as conn:
        events = [row.event for row in conn.execute(select(audit_events))]
    assert "redirect.refused" in events


def test_a_refused_return_url_is_recorded_as_sent(auth, services) -> None:  # type: ignore[no-untyped-def]
    """A path-like ``rd`` is judged as a portal page, but the record keeps what was sent
    (the outside test found the joined URL there instead)."""
    auth.login(rd="/\t/evil.example")
    with services.engine.connect() as conn:
        refused = [dict(row._mapping) for row in conn.execute(
            select(audit_events).where(audit_events.c.event == "redirect.refused"))]
    assert len(refused) == 1
    assert json.loads(refused[0]["detail"])["url"] == "/\\x09/evil.example"  # escaped TAB


@pytest.mark.parametrize("username,password", [
    ("", "x"), ("alice", ""), ("a" * 300, "x"), ("alice\x00", "x"), ("alice", "x" * 2000),
])
def test_malformed_input_is_a_plain_failure(auth, username, password) -> None:  # type: ignore[no-untyped-def]
    assert auth.login(username=username, password=password).status_code == 401


def test_oversized_form_is_413(client) -> None:  # type: ignore[no-untyped-def]
    r = client.post("/login", data={"username": "a", "password": "x" * 40000})
    assert r.status_code == 413


def test_invalid_utf8_form_is_not_a_500(client, auth) -> None:  # type: ignore[no-untyped-def]
    token = auth.csrf()
    body = b"csrf_token=" + token.encode() + b"&username=%ff%fe&password=%c3%28"
    r = client.post("/login", data=body, content_type="application/x-www-form-urlencoded")
    assert r.status_code in (400, 401)


def test_home_and_health(client, auth) -> None:  # type: ignore[no-untyped-def]
    assert client.get("/").status_code == 303
    auth.login()
    assert "Alice Liddell" in client.get("/").get_data(as_text=True)
    assert client.get("/healthz").status_code == 200
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.get_json()["ready"] is True


def test_readyz_503_when_directory_broken(client, users_file) -> None:  # type: ignore[no-untyped-def]
    users_file.write_text("users: [broken")
    r = client.get("/readyz")
    assert r.status_code == 503 and r.get_json()["checks"]["directory"] == "directory_unavailable"


def test_passkey_sign_in_is_off_unless_configured(client, auth) -> None:  # type: ignore[no-untyped-def]
    token = auth.csrf()
    assert "passkey-login" not in client.get("/login").get_data(as_text=True)
    r = client.post("/login/passkey/options", headers={"X-CSRFToken": token})
    assert r.status_code == 404


# -- issue 14 finding 4: sessions do not survive a password change --------------------------
def _revoked(services) -> list[str]:  # type: ignore[no-untyped-def]
    with services.engine.connect() as conn:
        return [r.reason for r in conn.execute(
            select(audit_events).where(audit_events.c.event == "session.revoked"))]


def test_a_password_change_ends_every_session_of_the_account(client, auth, services) -> None:  # type: ignore[no-untyped-def]
    """The thief's session (another device) ends when the owner changes the password."""
    from authgate.core.values import Level

    thief = services.sessions.start(services.directory.lookup("alice"), level=Level.MFA,
                                    client_ip="203.0.113.9", user_agent="thief")
    other = services.sessions.start(services.directory.lookup("bob"), level=Level.MFA,
                                    client_ip="10.0.0.2", user_agent="bob")
    pending_change(client, services, "alice")
    r = client.post("/password/change", data={
        "csrf_token": auth.csrf(), "username": "Alice", "old_password": ALICE_PASSWORD,
        "new_password": "a brand new long password", "confirm_password":
        "a brand new long password"})
    assert r.status_code == 200 and "Your password was changed" in r.get_data(as_text=True)
    assert services.sessions.resolve(thief.token) is None
    assert services.sessions.resolve(other.token) is not None  # other users keep theirs
    record = last_audit(services)
    assert (record["event"], record["reason"]) == ("password.change", "password_changed")
    assert '"sessions_ended": "1"' in record["detail"]


def test_an_operator_reset_ends_the_session_at_the_next_re_read(client, auth, clock,  # type: ignore[no-untyped-def]
                                                                 services, users_file) -> None:
    """``authgate users set-password`` (the users file's changed-at time moves): the session
    that signed in with the old password ends at the next directory re-read."""
    from authgate.core.values import Level
    from authgate.directory.file import FileDirectory
    from tests.conftest import FAST_HASHER, verify_headers

    auth.login()
    bob = services.sessions.start(services.directory.lookup("bob"), level=Level.PASSWORD,
                                  client_ip="10.0.0.2", user_agent="bob")
    assert services.directory.lookup("alice").password_set_at  # the file keeps a stamp
    FileDirectory(users_file, hasher=FAST_HASHER).set_password("alice", "reset by operator!")
    clock.advance(minutes=4)
    assert client.get("/verify", headers=verify_headers()).status_code == 200  # not due yet
    clock.advance(minutes=2)
    assert client.get("/verify", headers=verify_headers()).status_code == 401
    assert _revoked(services) == ["password_changed"]
    assert services.sessions.store.list_for_user("alice") == []
    assert services.sessions.resolve(bob.token) is not None
    # Signing in with the new password gives a session that lasts.
    auth.login(password="reset by operator!")
    clock.advance(minutes=6)
    assert client.get("/verify", headers=verify_headers()).status_code == 200


# -- outside attack on #14's stack: the change page with a stolen password ------------------
def _change(client, auth, username: str = "alice"):  # type: ignore[no-untyped-def]
    return client.post("/password/change", data={
        "csrf_token": auth.csrf(), "username": username, "old_password": ALICE_PASSWORD,
        "new_password": "the thief's new password", "confirm_password":
        "the thief's new password"})


def test_a_stolen_password_cannot_change_the_password_without_the_directory_asking(  # type: ignore[no-untyped-def]
        client, auth, services, clock) -> None:
    """Only a login the directory answered "expired"/"must change" may change it here; a
    thief with the password alone could otherwise take the domain password and end the
    owner's strong sessions."""
    from authgate.core.values import Level

    owner = services.sessions.start(services.directory.lookup("alice"),
                                    level=Level.PHISHING_RESISTANT, client_ip="10.0.0.5",
                                    user_agent="owner")
    r = _change(client, auth)
    assert r.status_code == 403 and "Sign in first" in r.get_data(as_text=True)
    pending_change(client, services, "bob")  # a marker for another account changes nothing
    assert _change(client, auth).status_code == 403
    pending_change(client, services, "alice")
    clock.advance(minutes=11)  # too late
    assert _change(client, auth).status_code == 403
    with services.engine.connect() as conn:
        refusals = conn.execute(select(audit_events.c.outcome, audit_events.c.reason).where(
            audit_events.c.event == "password.change")).all()
    assert [tuple(r) for r in refusals] == [("deny", "no_pending_change")] * 3
    assert services.sessions.resolve(owner.token) is not None
    assert auth.login().status_code == 303  # the old password still works
