"""TOTP through the real pages: admin-bound enrolment, login, replay, step-up limits."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from authgate.storage.tables import audit_events
from authgate.storage.tables_factors import credentials
from tests.credentials.conftest import MFA_URL


def audit(services, event: str) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    with services.engine.connect() as conn:
        return [(r.outcome, r.reason) for r in conn.execute(
            select(audit_events).where(audit_events.c.event == event)
            .order_by(audit_events.c.id))]


def test_password_session_is_stepped_up_then_allowed(mfa, client, services) -> None:  # type: ignore[no-untyped-def]
    assert mfa.verify().status_code == 401
    secret = mfa.enrol_totp(mfa.issue_code())
    assert mfa.verify().status_code == 401  # registered, not yet proven (issue 14)
    page = mfa.factor_page().get_data(as_text=True)
    assert mfa.post("/login/totp", page, code=mfa.totp(secret, 1), rd=MFA_URL).status_code == 303
    assert mfa.verify().status_code == 200
    with services.engine.connect() as conn:
        row = conn.execute(select(credentials)).mappings().one()
    assert row["active"] and secret not in row["secret"] and row["secret"].startswith("v1.")
    assert ("success", "totp") in audit(services, "factor.added")


def test_enrolment_code_is_replay_safe_at_next_login(mfa, client, clock, services) -> None:  # type: ignore[no-untyped-def]
    secret = mfa.enrol_totp(mfa.issue_code())
    used_code = mfa.totp(secret)
    client.post("/logout", data={"csrf_token": mfa.auth.csrf("/logout")})
    page = mfa.login_to().get_data(as_text=True)
    assert "Authenticator app" in page
    r = mfa.post("/login/totp", page, code=used_code, rd=MFA_URL)
    assert r.status_code == 401  # the enrolment code cannot be replayed
    assert audit(services, "login.totp")[-1] == ("failure", "code_replayed")
    clock.advance(seconds=30)
    r = mfa.post("/login/totp", page, code=mfa.totp(secret), rd=MFA_URL)
    assert r.status_code == 303
    assert mfa.verify().status_code == 200


def test_same_code_twice_and_old_code_refused(mfa, client, clock, services) -> None:  # type: ignore[no-untyped-def]
    secret = mfa.enrol_totp(mfa.issue_code())
    clock.advance(seconds=120)
    for attempt, expect in ((mfa.totp(secret, -3), 401), (mfa.totp(secret), 303),
                            (mfa.totp(secret), 401)):
        client.delete_cookie("__Host-authgate_session", domain="localhost")
        page = mfa.login_to().get_data(as_text=True)
        r = mfa.post("/login/totp", page, code=attempt, rd=MFA_URL)
        assert r.status_code == expect
    reasons = [reason for _, reason in audit(services, "login.totp")]
    assert reasons[-3:] == ["invalid_code", "totp_ok", "code_replayed"]


def test_session_id_renewed_after_the_factor(mfa, client, clock) -> None:  # type: ignore[no-untyped-def]
    secret = mfa.enrol_totp(mfa.issue_code())
    client.post("/logout", data={"csrf_token": mfa.auth.csrf("/logout")})
    clock.advance(seconds=30)
    page = mfa.login_to().get_data(as_text=True)
    before = client.get_cookie("__Host-authgate_session").value
    mfa.post("/login/totp", page, code=mfa.totp(secret), rd=MFA_URL)
    after = client.get_cookie("__Host-authgate_session").value
    assert before != after
    assert mfa.services.sessions.resolve(before) is None


def test_totp_never_satisfies_phishing_resistant(mfa, client) -> None:  # type: ignore[no-untyped-def]
    mfa.enrol_totp(mfa.issue_code())
    strong = "http://localhost:8080/strong/admin"
    assert mfa.verify(strong).status_code == 401
    page = mfa.factor_page(strong).get_data(as_text=True)
    assert "security key" in page.lower() and 'name="code"' not in page.split("Recovery")[0]
    r = mfa.post("/login/totp", page, code="123456", rd=strong)
    assert r.status_code == 401 and mfa.verify(strong).status_code == 401


def test_no_code_no_enrolment(mfa, client, services) -> None:  # type: ignore[no-untyped-def]
    r = mfa.login_to()
    assert r.headers["Location"].startswith("/enrol")
    page = client.get("/enrol").get_data(as_text=True)
    assert "enrolment code" in page
    r = mfa.post("/enrol/totp/start", page, name="Attacker phone")
    assert r.status_code == 303 and r.headers["Location"].startswith("/enrol")
    r = client.post("/enrol/webauthn/options", headers={"X-CSRFToken": mfa.csrf(page)})
    assert r.status_code == 403 and not r.get_json()["ok"]
    with services.engine.connect() as conn:
        assert conn.execute(select(credentials)).all() == []


def test_bad_enrolment_codes_refused_and_audited(mfa, client, clock, services) -> None:  # type: ignore[no-untyped-def]
    expired = mfa.issue_code(ttl=timedelta(minutes=5))
    bobs = mfa.issue_code("bob")
    good = mfa.issue_code()
    clock.advance(minutes=10)
    mfa.login_to()
    page = client.get("/enrol").get_data(as_text=True)
    for code in (expired, bobs, "not-a-code", "aaaa-aaaa-aaaa-aaaa"):
        assert mfa.post("/enrol/code", page, code=code).status_code == 401
    assert mfa.post("/enrol/code", page, code=good).status_code == 303
    client.delete_cookie("__Host-authgate_session", domain="localhost")
    mfa.login_to()
    page = client.get("/enrol").get_data(as_text=True)
    assert mfa.post("/enrol/code", page, code=good).status_code == 401  # used once already
    reasons = [r for _, r in audit(services, "enrol.code_redeemed")]
    assert reasons == ["code_expired", "other_users_code", "malformed_code", "unknown_code",
                       "redeemed", "code_reused"]


def test_recovery_codes_single_use_and_regeneration(mfa, client, clock, services) -> None:  # type: ignore[no-untyped-def]
    import re

    mfa.enrol_totp(mfa.issue_code())
    page = client.get("/enrol/finish").get_data(as_text=True)
    page = mfa.post("/enrol/finish", page).get_data(as_text=True)
    codes = re.findall(r"<li>([a-z2-9-]{14})</li>", page)
    assert len(codes) == 10
    with services.engine.connect() as conn:
        dump = repr(conn.execute(select(audit_events)).all())
    assert not any(c in dump for c in codes)
    client.delete_cookie("__Host-authgate_session", domain="localhost")
    page = mfa.login_to().get_data(as_text=True)
    assert mfa.post("/login/recovery", page, code=codes[0], rd=MFA_URL).status_code == 303
    assert mfa.verify().status_code == 200
    client.delete_cookie("__Host-authgate_session", domain="localhost")
    page = mfa.login_to().get_data(as_text=True)
    assert mfa.post("/login/recovery", page, code=codes[0], rd=MFA_URL).status_code == 401
    assert audit(services, "login.recovery")[-1][0] == "failure"
    assert services.mfa.recovery.remaining("alice") == 9


def test_removing_a_factor_ends_sessions(mfa, client, clock, services) -> None:  # type: ignore[no-untyped-def]
    secret = mfa.enrol_totp(mfa.issue_code())
    page = mfa.factor_page().get_data(as_text=True)
    assert mfa.post("/login/totp", page, code=mfa.totp(secret, 1), rd=MFA_URL).status_code == 303
    other = services.sessions.start(services.directory.lookup("alice"),
                                    level=services.sessions.store.list_for_user("alice")[0].level,
                                    client_ip="10.9.9.9", user_agent="other device")
    cred = services.mfa.factors.summary("alice").active[0]
    page = client.get("/account").get_data(as_text=True)
    assert "Phone" in page and "10.9.9.9" in page
    r = mfa.post(f"/account/factors/{cred.id}/remove", page)
    assert r.status_code == 303
    assert services.sessions.resolve(other.token) is None
    assert mfa.verify().status_code == 401
    assert audit(services, "factor.removed")[-1] == ("success", "removed")


def test_wrong_password_never_reaches_factor_pages(client) -> None:  # type: ignore[no-untyped-def]
    assert client.get("/login/next").status_code == 303
    assert client.post("/login/totp", data={"code": "123456"}).status_code == 400  # no CSRF
    assert client.get("/enrol").headers["Location"] == "/login"


def test_failures_since_last_sign_in_are_shown_after_login(mfa, client, app, clock) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import AuthActions

    secret = mfa.enrol_totp(mfa.issue_code())
    client.post("/logout", data={"csrf_token": mfa.auth.csrf("/logout")})
    AuthActions(app.test_client()).login(password="someone guessing")  # another browser
    clock.advance(seconds=60)
    page = mfa.login_to().get_data(as_text=True)
    r = mfa.post("/login/totp", page, code=mfa.totp(secret), rd=MFA_URL)
    warning = client.get(r.headers["Location"])
    text = warning.get_data(as_text=True)
    assert warning.status_code == 200 and "failed sign-in" in text and "Password refused" in text
    assert 'href="http://localhost:8080/mfa/report' in text  # Continue goes on to the app


def test_user_sees_and_ends_other_sessions(mfa, client, services) -> None:  # type: ignore[no-untyped-def]
    from authgate.core.values import Level

    mfa.enrol_totp(mfa.issue_code())
    other = services.sessions.start(services.directory.lookup("alice"), level=Level.MFA,
                                    client_ip="10.1.1.1",
                                    user_agent="Mozilla/5.0 (Windows NT 10.0) Firefox/128.0")
    page = client.get("/account").get_data(as_text=True)
    assert "Firefox on Windows" in page and "10.1.1.1" in page
    r = mfa.post("/account/sessions/end-others", page)
    assert r.status_code == 303
    assert services.sessions.resolve(other.token) is None
    assert client.get("/account").status_code == 200  # this one lives on


def test_enrolment_code_guessing_is_throttled_per_user(mfa, client, clock, services) -> None:  # type: ignore[no-untyped-def]
    """Issue 14: someone with the password guesses enrolment codes. After the second-factor
    limit (5 in the window) even the right code is refused, with the same message, and the
    refusal is audited; the user's own throttle is the regulator's factor counter."""
    good = mfa.issue_code()
    mfa.login_to()
    page = client.get("/enrol").get_data(as_text=True)
    for n in range(5):
        r = mfa.post("/enrol/code", page, code=f"guess-{n}")
        assert r.status_code == 401
    r = mfa.post("/enrol/code", page, code=good)
    assert r.status_code == 401
    assert "That enrolment code was not accepted" in r.get_data(as_text=True)
    reasons = [r for _, r in audit(services, "enrol.code_redeemed")]
    assert reasons[-1] == "code_throttled" and len(reasons) == 6
    assert audit(services, "login.factor")[-1][0] == "deny"
    assert services.mfa.enrolment.codes_for("alice")[0].used_at is None  # not spent
    clock.advance(minutes=31)  # the ban (15 min) and the window (15 min) pass
    mfa.login_to()
    page = client.get("/enrol").get_data(as_text=True)
    assert mfa.post("/enrol/code", page, code=good).status_code == 303



def test_a_throttled_step_leaves_one_record_with_its_request_id(mfa, client, clock,  # type: ignore[no-untyped-def]
                                                                services) -> None:
    """Outside test of issue 20: a throttled TOTP step left two records, the regulator's
    without the request id and the page's with it. Now the step writes one."""
    secret = mfa.enrol_totp(mfa.issue_code())
    clock.advance(seconds=120)
    page = mfa.login_to().get_data(as_text=True)
    for n in range(5):
        assert mfa.post("/login/totp", page, code=f"00000{n}", rd=MFA_URL).status_code == 401
    with services.engine.connect() as conn:
        before = conn.execute(select(audit_events.c.id).order_by(audit_events.c.id.desc())
                              ).first()[0]
    r = client.post("/login/totp", headers={"X-Request-ID": "throttled-step-1"},
                    data={"csrf_token": mfa.csrf(page), "code": mfa.totp(secret), "rd": MFA_URL})
    assert r.status_code == 401
    with services.engine.connect() as conn:
        rows = conn.execute(select(audit_events.c.event, audit_events.c.outcome,
                                   audit_events.c.reason, audit_events.c.request_id)
                            .where(audit_events.c.id > before)).all()
    assert [tuple(row) for row in rows] == [
        ("login.factor", "deny", "factor_banned", "throttled-step-1")]


def test_the_factor_ban_record_names_the_address_that_failed(mfa, client, clock,  # type: ignore[no-untyped-def]
                                                             services) -> None:
    """The ``ban.factor`` record of five wrong codes carried no address, request id or path
    (the throttle's settlement did not know the request): a SOC could not tell where the
    guesses came from nor find the request. Now it names the request whose failure started
    the ban."""
    mfa.enrol_totp(mfa.issue_code())
    clock.advance(seconds=120)
    page = mfa.login_to().get_data(as_text=True)
    for n in range(4):
        assert mfa.post("/login/totp", page, code=f"00000{n}", rd=MFA_URL).status_code == 401
    fifth = client.post("/login/totp", headers={  # through the trusted proxy (127.0.0.1)
        "X-Request-ID": "fifth-guess", "X-Forwarded-For": "192.0.2.44"},
        data={"csrf_token": mfa.csrf(page), "code": "000004", "rd": MFA_URL})
    assert fifth.status_code == 401
    with services.engine.connect() as conn:
        bans = conn.execute(select(audit_events.c.reason, audit_events.c.client_ip,
                                   audit_events.c.request_id, audit_events.c.method,
                                   audit_events.c.path)
                            .where(audit_events.c.event == "ban.factor")).all()
    assert [tuple(b) for b in bans] == [
        ("factor_banned", "192.0.2.44", "fifth-guess", "POST", "/login/totp")]
