"""Staff journeys through the real pages (issue 17 items 2, 4, 5, 6, 7): the sign-in
history warns only about failures the user did not make, and only once; a wrong set-up code
retries in place; the portal home is a hub; every message says what to do next; recovery
codes are the default step after a device, printable and downloadable."""
from __future__ import annotations

import re
from datetime import timedelta

from authgate.core.values import RequestMeta
from authgate.sessions.history import COMPLETED, complete_sign_in
from tests.conftest import AuthActions
from tests.credentials.conftest import MFA_URL

STRONG_URL = "http://localhost:8080/strong/payroll"


def _sign_in(mfa, client, secret: str):  # type: ignore[no-untyped-def]
    """Log out, then password + TOTP; returns the response of the arrival (``/login/next``)."""
    client.post("/logout", data={"csrf_token": mfa.auth.csrf("/logout")})
    mfa.clock.advance(seconds=31)
    page = mfa.login_to().get_data(as_text=True)
    r = mfa.post("/login/totp", page, code=mfa.totp(secret), rd=MFA_URL)
    assert r.status_code == 303
    return client.get(r.headers["Location"])


def _guess_from_elsewhere(app) -> None:  # type: ignore[no-untyped-def]
    AuthActions(app.test_client()).login(password="someone guessing")


# --- item 2: "Check your recent sign-ins" only for failures the user did not make, once ---

def test_own_typo_in_this_sign_in_is_not_a_warning(mfa, client) -> None:  # type: ignore[no-untyped-def]
    secret = mfa.enrol_totp(mfa.issue_code())
    client.post("/logout", data={"csrf_token": mfa.auth.csrf("/logout")})
    assert mfa.auth.login(password="a typo").status_code == 401  # this browser's own
    mfa.clock.advance(seconds=31)
    page = mfa.login_to().get_data(as_text=True)
    assert mfa.post("/login/totp", page, code="000000", rd=MFA_URL).status_code == 401
    r = mfa.post("/login/totp", page, code=mfa.totp(secret), rd=MFA_URL)
    arrival = client.get(r.headers["Location"])
    assert arrival.status_code == 303 and arrival.headers["Location"] == MFA_URL


def test_someone_elses_failure_is_shown_once(mfa, client, app) -> None:  # type: ignore[no-untyped-def]
    secret = mfa.enrol_totp(mfa.issue_code())
    _guess_from_elsewhere(app)
    warning = _sign_in(mfa, client, secret)
    text = warning.get_data(as_text=True)
    assert warning.status_code == 200 and "Check your recent sign-ins" in text
    assert "<strong>1</strong> failed sign-in" in text
    again = _sign_in(mfa, client, secret)  # the next sign-in: already shown, not again
    assert again.status_code == 303 and again.headers["Location"] == MFA_URL


def test_the_first_sign_in_after_registering_a_device_warns_about_nothing(mfa, client) -> None:  # type: ignore[no-untyped-def]
    secret = mfa.enrol_totp(mfa.issue_code())
    page = mfa.factor_page().get_data(as_text=True)
    r = mfa.post("/login/totp", page, code=mfa.totp(secret, 1), rd=MFA_URL)
    arrival = client.get(r.headers["Location"])
    assert arrival.status_code == 303 and arrival.headers["Location"] == MFA_URL


def test_every_factor_completes_a_sign_in_so_passkey_users_are_not_warned_forever(  # type: ignore[no-untyped-def]
        services, app) -> None:
    """A passkey sign-in arrives through the same ``/login/next`` as the others, so it moves
    the boundary too: the history reads completions, not password successes."""
    _guess_from_elsewhere(app)
    meta = RequestMeta(request_id="passkey-1")
    first = complete_sign_in(services.audit_store, services.audit, username="alice",
                             level="phishing_resistant", own_request_ids=frozenset(),
                             now=services.clock.now(), meta=meta)
    assert len(first.failures) == 1
    second = complete_sign_in(services.audit_store, services.audit, username="alice",
                              level="phishing_resistant", own_request_ids=frozenset(),
                              now=services.clock.now(), meta=RequestMeta(request_id="p-2"))
    assert second.failures == () and second.previous is not None
    assert second.previous.event.event == COMPLETED


def test_the_hub_counts_only_failures_since_this_sign_in(mfa, client, app) -> None:  # type: ignore[no-untyped-def]
    secret = mfa.enrol_totp(mfa.issue_code())
    mfa.auth.login(password="a typo")  # own typo, before this sign-in completes
    page = mfa.factor_page().get_data(as_text=True)
    mfa.post("/login/totp", page, code=mfa.totp(secret, 1), rd=MFA_URL)
    mfa.factor_page()  # arrives: the sign-in is complete
    assert "No failed sign-ins since you signed in" in client.get("/").get_data(as_text=True)
    _guess_from_elsewhere(app)
    assert "1 failed\n      attempt since you signed in" in client.get("/").get_data(as_text=True)


def test_a_cloned_key_is_never_taken_for_this_browsers_own_typo(services) -> None:  # type: ignore[no-untyped-def]
    from authgate.core.values import AuditEvent, Outcome

    for rid, event, reason in (("r1", "login.password", "bad_password"),
                               ("r2", "login.webauthn", "sign_count_regressed")):
        services.audit.record(AuditEvent.for_request(RequestMeta(request_id=rid), event,
                                                     Outcome.FAILURE, reason, username="alice"))
    check = complete_sign_in(services.audit_store, services.audit, username="alice",
                             level="mfa", own_request_ids=frozenset({"r1", "r2"}),
                             now=services.clock.now(), meta=RequestMeta(request_id="r3"))
    assert [e.event.reason for e in check.failures] == ["sign_count_regressed"]


def test_a_session_completes_its_sign_in_once(mfa, client, services) -> None:  # type: ignore[no-untyped-def]
    secret = mfa.enrol_totp(mfa.issue_code())
    page = mfa.factor_page().get_data(as_text=True)
    mfa.post("/login/totp", page, code=mfa.totp(secret, 1), rd=MFA_URL)
    mfa.factor_page()
    mfa.factor_page()
    stored = list(services.audit_store.query(username="alice", event=COMPLETED,
                                        since=services.clock.now() - timedelta(days=1)))
    assert len(stored) == 1


# --- item 4: a wrong set-up code keeps the same secret and retries in place ---

def _totp_setup(mfa, client) -> str:  # type: ignore[no-untyped-def]
    mfa.login_to()
    page = client.get("/enrol").get_data(as_text=True)
    assert mfa.post("/enrol/code", page, code=mfa.issue_code()).status_code == 303
    page = client.get("/enrol").get_data(as_text=True)
    return mfa.post("/enrol/totp/start", page, name="Phone").get_data(as_text=True)


def _secret_and_id(page: str) -> tuple[str, str]:
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', page)
    cred = re.search(r'name="credential_id" value="([0-9a-f]+)"', page)
    assert secret and cred, page[:400]
    return secret.group(1), cred.group(1)


def test_a_wrong_setup_code_retries_with_the_same_secret(mfa, client, services) -> None:  # type: ignore[no-untyped-def]
    page = _totp_setup(mfa, client)
    secret, cred = _secret_and_id(page)
    r = mfa.post("/enrol/totp/confirm", page, credential_id=cred, code="000000")
    retry = r.get_data(as_text=True)
    assert r.status_code == 401 and _secret_and_id(retry) == (secret, cred)
    assert 'id="code-error"' in retry and 'aria-describedby="code-error"' in retry
    assert "<svg" in retry  # the QR code again
    r = mfa.post("/enrol/totp/confirm", retry, credential_id=cred, code=mfa.totp(secret))
    assert r.status_code == 303 and "/enrol/finish" in r.headers["Location"]
    assert services.mfa.factors.summary("alice").has_totp


def test_a_setup_past_its_lifetime_is_not_offered_again(services, clock) -> None:  # type: ignore[no-untyped-def]
    """The page then starts a new set-up and says so (``_TOTP_EXPIRED``); in practice the
    enrolment code's window (also 15 minutes) usually closes first."""
    import pytest

    from authgate.credentials.totp import PENDING_LIFETIME
    from authgate.factors.errors import FactorError

    totp = services.mfa.totp
    pending = totp.start(username="alice", name="Phone", meta=RequestMeta())
    assert totp.pending(username="alice", credential_id=pending.credential_id) == pending
    clock.advance(seconds=PENDING_LIFETIME.total_seconds() + 1)
    assert totp.pending(username="alice", credential_id=pending.credential_id) is None
    with pytest.raises(FactorError):
        totp.confirm(username="alice", credential_id=pending.credential_id, code="000000",
                     meta=RequestMeta())
    reasons = [e.event.reason for e in services.audit_store.query(
        username="alice", event="enrol.totp.confirm", since=clock.now() - timedelta(days=1))]
    assert reasons == ["setup_expired"]


def test_another_users_pending_setup_is_never_shown(mfa, client, services) -> None:  # type: ignore[no-untyped-def]
    bobs = services.mfa.totp.start(username="bob", name="Phone", meta=RequestMeta())
    assert services.mfa.totp.pending(username="alice", credential_id=bobs.credential_id) is None
    assert services.mfa.totp.pending(username="bob", credential_id=bobs.credential_id) == bobs


# --- item 5: the home is a hub; "My account" in every signed-in header; a next step ---

def test_home_is_a_hub_and_the_header_links_my_account(mfa, client) -> None:  # type: ignore[no-untyped-def]
    mfa.enrol_totp(mfa.issue_code())
    home = client.get("/").get_data(as_text=True)
    for text in ("My sign-in devices", "Where I'm signed in", "Recent activity",
                 'href="/account"', "Add a device"):
        assert text in home
    for path in ("/", "/account", "/enrol/finish"):
        assert '<a href="/account">My account</a>' in client.get(path).get_data(as_text=True)
    client.delete_cookie("__Host-authgate_session", domain="localhost")  # signed out:
    assert '<a href="/account">' not in client.get("/login").get_data(as_text=True)


def test_a_user_who_may_add_a_key_is_sent_to_add_one(mfa, client) -> None:  # type: ignore[no-untyped-def]
    secret = mfa.enrol_totp(mfa.issue_code())  # the enrolment code's window is still open
    page = mfa.factor_page().get_data(as_text=True)
    mfa.post("/login/totp", page, code=mfa.totp(secret, 1), rd=MFA_URL)
    page = mfa.factor_page(STRONG_URL).get_data(as_text=True)
    assert "Add a security key now" in page and "/enrol?rd=" in page
    mfa.clock.advance(seconds=60)  # past the code already used
    _sign_in(mfa, client, secret)  # a new session: no code window, so a code is needed
    page = mfa.factor_page(STRONG_URL).get_data(as_text=True)
    assert "ask the IT\n    service desk for an enrolment code" in page
    assert "Add a security key now" not in page


# --- item 6: messages that help recovery (uniform before the password step) ---

def test_a_wrong_password_keeps_the_username_and_focuses_the_password(client, auth) -> None:  # type: ignore[no-untyped-def]
    wrong = auth.login(password="wrong").get_data(as_text=True)
    unknown = auth.login(username="nobody", password="wrong").get_data(as_text=True)
    assert 'value="alice"' in wrong and 'value="nobody"' in unknown
    assert re.search(r'id="password"[^>]*autofocus', wrong)
    strip = re.compile(r'value="[^"]*"')  # the same page for both, but for what was typed
    assert strip.sub("", wrong) == strip.sub("", unknown)


def test_an_expired_enrolment_code_says_so_after_the_password_step(mfa, client) -> None:  # type: ignore[no-untyped-def]
    expired = mfa.issue_code(ttl=timedelta(minutes=5))
    bobs = mfa.issue_code("bob")
    mfa.clock.advance(minutes=10)
    mfa.login_to()
    page = client.get("/enrol").get_data(as_text=True)
    text = mfa.post("/enrol/code", page, code=expired).get_data(as_text=True)
    assert "This enrolment code has expired" in text
    for code in (bobs, "aaaa-aaaa-aaaa-aaaa"):  # another user's code: the generic message
        text = mfa.post("/enrol/code", page, code=code).get_data(as_text=True)
        assert "was not accepted" in text and "expired" not in text.split("alert")[1][:200]


def test_a_replayed_code_says_wait_for_the_next_one(mfa, client) -> None:  # type: ignore[no-untyped-def]
    secret = mfa.enrol_totp(mfa.issue_code())
    page = mfa.factor_page().get_data(as_text=True)
    code = mfa.totp(secret, 1)
    assert mfa.post("/login/totp", page, code=code, rd=MFA_URL).status_code == 303
    client.post("/logout", data={"csrf_token": mfa.auth.csrf("/logout")})
    page = mfa.login_to().get_data(as_text=True)
    r = mfa.post("/login/totp", page, code=code, rd=MFA_URL)
    assert r.status_code == 401 and "Wait for the next code" in r.get_data(as_text=True)


def test_a_refused_passkey_says_what_to_try(client) -> None:  # type: ignore[no-untyped-def]
    from authgate.web.passkey import _REFUSED

    assert "another passkey or security key" in _REFUSED and "password" in _REFUSED


# --- item 7: recovery codes: default step, print, download, count after use ---

def test_recovery_codes_are_the_default_step_after_a_device(mfa, client) -> None:  # type: ignore[no-untyped-def]
    mfa.login_to()
    page = client.get("/enrol").get_data(as_text=True)
    mfa.post("/enrol/code", page, code=mfa.issue_code())
    page = client.get("/enrol").get_data(as_text=True)
    page = mfa.post("/enrol/totp/start", page, name="Phone", rd=MFA_URL).get_data(as_text=True)
    secret, cred = _secret_and_id(page)
    r = mfa.post("/enrol/totp/confirm", page, credential_id=cred, code=mfa.totp(secret),
                 rd=MFA_URL)
    assert "added=1" in r.headers["Location"]
    text = client.get(r.headers["Location"]).get_data(as_text=True)
    assert "One more step: create your recovery codes" in text
    assert re.search(r'id="create-codes" autofocus>Create my recovery codes', text)
    assert "Skip for now and continue" in text


def test_recovery_codes_print_and_download(mfa, client) -> None:  # type: ignore[no-untyped-def]
    mfa.enrol_totp(mfa.issue_code())
    page = client.get("/enrol/finish").get_data(as_text=True)
    page = mfa.post("/enrol/finish", page).get_data(as_text=True)
    codes = re.findall(r"<li>([a-z2-9-]{14})</li>", page)
    assert 'id="print-codes"' in page and "recovery.js" in page and "onclick" not in page
    r = client.post("/enrol/recovery-codes.txt",
                    data={"csrf_token": mfa.csrf(page), "code": codes})
    assert r.status_code == 200 and r.mimetype == "text/plain"
    assert r.headers["Content-Disposition"] == 'attachment; filename="recovery-codes.txt"'
    assert r.headers["Cache-Control"] == "no-store"
    assert all(c in r.get_data(as_text=True) for c in codes)
    bad = client.post("/enrol/recovery-codes.txt",
                      data={"csrf_token": mfa.csrf(page), "code": ["<script>"]})
    assert bad.status_code == 400
    nocsrf = client.post("/enrol/recovery-codes.txt", data={"code": codes})
    assert nocsrf.status_code in (400, 403)


def test_a_recovery_code_sign_in_shows_what_is_left(mfa, client) -> None:  # type: ignore[no-untyped-def]
    mfa.enrol_totp(mfa.issue_code())
    page = client.get("/enrol/finish").get_data(as_text=True)
    codes = re.findall(r"<li>([a-z2-9-]{14})</li>",
                       mfa.post("/enrol/finish", page).get_data(as_text=True))
    for used, code in enumerate(codes[:7], 1):
        client.delete_cookie("__Host-authgate_session", domain="localhost")
        page = mfa.login_to().get_data(as_text=True)
        r = mfa.post("/login/recovery", page, code=code, rd=MFA_URL)
        text = client.get(r.headers["Location"]).get_data(as_text=True)
        assert f"<strong>{10 - used}</strong>" in text and 'id="recovery-left"' in text
        assert ('id="new-codes"' in text) == (10 - used <= 3)
