"""Issue 14 finding 3: registering a factor never raises the session that registered it, and a
password + TOTP session cannot add a security key (a real-time phisher of both would get a
phishing-resistant key of their own). Through the real pages, with a software authenticator
that claims user verification as a phisher's script can."""
from __future__ import annotations

import json
from urllib.parse import quote

from authgate.core.values import Level
from tests.credentials.conftest import MFA_URL
from tests.credentials.soft_key import SoftKey
from tests.credentials.test_totp_flow import audit

STRONG_URL = "http://localhost:8080/strong/payroll"


def level_of(services, username: str = "alice") -> list[Level]:  # type: ignore[no-untyped-def]
    return [s.level for s in services.sessions.sessions_of(username)]


def post_json(mfa, path: str, page: str, body: str = "{}"):  # type: ignore[no-untyped-def]
    return mfa.client.post(path, data=body, content_type="application/json",
                           headers={"X-CSRFToken": mfa.csrf(page)})


def register_key(mfa, key: SoftKey, page: str, rd: str = MFA_URL):  # type: ignore[no-untyped-def]
    """The enrolment page's script: options, create, verify; returns the verify answer."""
    options = post_json(mfa, "/enrol/webauthn/options", page)
    if options.status_code != 200:
        return options
    return post_json(mfa, f"/enrol/webauthn/verify?rd={quote(rd, safe='')}", page,
                     key.register(options.get_json()))


def sign_in_with_key(mfa, key: SoftKey, rd: str):  # type: ignore[no-untyped-def]
    page = mfa.factor_page(rd).get_data(as_text=True)
    q = quote(rd, safe="")
    options = post_json(mfa, f"/login/webauthn/options?rd={q}", page)
    assert options.status_code == 200, options.get_data(as_text=True)[:300]
    return post_json(mfa, f"/login/webauthn/verify?rd={q}", page,
                     key.assert_(options.get_json()))


def totp_login(mfa, secret: str, steps: int = 1) -> None:  # type: ignore[no-untyped-def]
    page = mfa.login_to().get_data(as_text=True)
    r = mfa.post("/login/totp", page, code=mfa.totp(secret, steps), rd=MFA_URL)
    assert r.status_code == 303, r.get_data(as_text=True)[:300]


def test_a_totp_session_cannot_register_a_key_and_stays_mfa(mfa, client, clock,  # type: ignore[no-untyped-def]
                                                             services) -> None:
    """The penetration test's attack: password + a phished TOTP code, then a new key."""
    secret = mfa.enrol_totp(mfa.issue_code())
    client.post("/logout", data={"csrf_token": mfa.auth.csrf("/logout")})
    clock.advance(minutes=20)  # the admin code's enrolment window is long gone
    totp_login(mfa, secret)
    assert level_of(services) == [Level.MFA]
    page = client.get("/enrol").get_data(as_text=True)
    assert "Register security key" not in page  # the page offers no key without a code
    attacker = SoftKey(uv=True)
    r = register_key(mfa, attacker, page)
    assert r.status_code in (303, 403), r.status_code
    assert level_of(services) == [Level.MFA]
    assert [k for k in services.mfa.factors.summary("alice").active if k.kind == "webauthn"] == []
    assert mfa.verify(STRONG_URL).status_code == 401
    assert ("failure", "webauthn_needs_code") in audit(services, "enrol.refused")


def test_registering_a_key_with_an_admin_code_does_not_raise_the_session(  # type: ignore[no-untyped-def]
        mfa, client, services) -> None:
    r = mfa.login_to()
    page = client.get(r.headers["Location"]).get_data(as_text=True)
    r = mfa.post("/enrol/code", page, code=mfa.issue_code(), rd=MFA_URL)
    page = client.get(r.headers["Location"]).get_data(as_text=True)
    key = SoftKey(uv=True)
    r = register_key(mfa, key, page)
    assert r.status_code == 200 and r.get_json()["ok"], r.get_data(as_text=True)[:300]
    assert "__Host-authgate_session" not in r.headers.get("Set-Cookie", "")
    assert level_of(services) == [Level.PASSWORD]  # registered, not proven
    assert mfa.verify().status_code == 401 and mfa.verify(STRONG_URL).status_code == 401
    # The new key is proven in a normal sign-in step: only then the level rises.
    r = sign_in_with_key(mfa, key, STRONG_URL)
    assert r.status_code == 200 and r.get_json()["ok"], r.get_data(as_text=True)[:300]
    assert level_of(services) == [Level.PHISHING_RESISTANT]
    assert mfa.verify(STRONG_URL).status_code == 200


def test_confirming_an_authenticator_app_does_not_raise_the_session(mfa, services) -> None:  # type: ignore[no-untyped-def]
    secret = mfa.enrol_totp(mfa.issue_code())
    assert level_of(services) == [Level.PASSWORD]
    assert mfa.verify().status_code == 401
    page = mfa.factor_page().get_data(as_text=True)
    r = mfa.post("/login/totp", page, code=mfa.totp(secret, 1), rd=MFA_URL)
    assert r.status_code == 303
    assert level_of(services) == [Level.MFA] and mfa.verify().status_code == 200


def test_a_fresh_phishing_resistant_session_adds_a_key_and_keeps_its_level(  # type: ignore[no-untyped-def]
        mfa, client, clock, services) -> None:
    r = mfa.login_to()
    page = client.get(r.headers["Location"]).get_data(as_text=True)
    r = mfa.post("/enrol/code", page, code=mfa.issue_code(), rd=MFA_URL)
    page = client.get(r.headers["Location"]).get_data(as_text=True)
    first = SoftKey(uv=True)
    assert register_key(mfa, first, page).status_code == 200
    client.post("/logout", data={"csrf_token": mfa.auth.csrf("/logout")})
    clock.advance(minutes=20)  # the admin code's enrolment window is long gone
    mfa.login_to(STRONG_URL)
    assert sign_in_with_key(mfa, first, STRONG_URL).status_code == 200
    before = level_of(services)
    page = client.get("/enrol").get_data(as_text=True)
    assert "Register security key" in page
    second = SoftKey(uv=True)
    r = register_key(mfa, second, page)
    assert r.status_code == 200 and r.get_json()["ok"]
    assert level_of(services) == before == [Level.PHISHING_RESISTANT]
    # ... but not once the strong login is stale.
    clock.advance(minutes=6)
    assert mfa.verify(STRONG_URL).status_code == 200
    r = register_key(mfa, SoftKey(uv=True), client.get("/enrol/finish").get_data(as_text=True))
    assert r.status_code in (303, 403)
    assert len([k for k in services.mfa.factors.summary("alice").active
                if k.kind == "webauthn"]) == 2
    assert json.dumps(audit(services, "enrol.refused"))  # the refusal is audited
