"""The page logic behind the browser journeys of issue 17 (tests/browser/test_journeys_*):
each step says what it is for and leads on.

* a refused enrolment code for someone adding a key to a device they have does not say
  "your account needs a second sign-in device" (item 5);
* after a further device, with enough recovery codes, going on is the primary step and
  replacing the codes (which stops the kept ones) a secondary one; with none or few left,
  creating codes stays the default step, at the one threshold ``FEW_RECOVERY_CODES`` (item 7);
* the login page words the browser's passkey refusal with the way in that remains, the
  username and password (item 6).
"""
from __future__ import annotations

import re
from pathlib import Path

from authgate.core.values import RequestMeta
from authgate.web.factor_login import FEW_RECOVERY_CODES
from tests.credentials.conftest import MFA_URL

STATIC = Path(__file__).resolve().parents[2] / "authgate" / "web" / "static"


def _class_of(html: str, element_id: str) -> str:
    match = re.search(rf'<[^>]*id="{element_id}"[^>]*>', html)
    assert match, element_id
    found = re.search(r'class="([^"]*)"', match.group(0))
    return found.group(1) if found else ""


def test_a_refused_code_while_adding_a_key_says_adding(mfa, client) -> None:  # type: ignore[no-untyped-def]
    first = mfa.login_to()
    page = client.get(first.headers["Location"]).get_data(as_text=True)
    text = mfa.post("/enrol/code", page, code="abcd-efgh-jkmn-pqrs").get_data(as_text=True)
    assert "Your account needs a second sign-in device" in text  # a first device
    mfa.enrol_totp(mfa.issue_code())
    page = client.get("/enrol").get_data(as_text=True)
    r = mfa.post("/enrol/code", page, code="abcd-efgh-jkmn-pqrs")
    text = r.get_data(as_text=True)
    assert r.status_code == 401 and "was not accepted" in text
    assert "To add a security key or another sign-in device" in text
    assert "needs a second sign-in device" not in text
    assert re.search(r'id="code"[^>]*aria-describedby="enrol-error"', text)


def test_with_codes_kept_going_on_is_the_primary_step(mfa, client) -> None:  # type: ignore[no-untyped-def]
    mfa.enrol_totp(mfa.issue_code())
    url = "/enrol/finish?rd=" + MFA_URL + "&added=1"
    text = client.get(url).get_data(as_text=True)  # no codes yet: create them first
    assert "One more step" in text and re.search(r'id="create-codes" autofocus', text)
    assert "secondary" in _class_of(text, "skip-codes")
    mfa.post("/enrol/finish", text)
    text = client.get(url).get_data(as_text=True)  # ten codes kept: go on
    assert "secondary" in _class_of(text, "create-codes")
    assert "secondary" not in _class_of(text, "skip-codes")
    assert not re.search(r'id="create-codes"[^>]*autofocus', text)


def test_few_codes_left_make_creating_new_ones_the_default(mfa, client, services) -> None:  # type: ignore[no-untyped-def]
    mfa.enrol_totp(mfa.issue_code())
    page = client.get("/enrol/finish").get_data(as_text=True)
    codes = re.findall(r"<li>([a-z2-9-]{14})</li>",
                       mfa.post("/enrol/finish", page).get_data(as_text=True))
    for code in codes[:10 - FEW_RECOVERY_CODES - 1]:
        services.mfa.recovery.use(username="alice", code=code, meta=RequestMeta())
    text = client.get("/enrol/finish?rd=" + MFA_URL).get_data(as_text=True)
    assert "running out" not in text and "secondary" in _class_of(text, "create-codes")
    services.mfa.recovery.use(username="alice", code=codes[10 - FEW_RECOVERY_CODES - 1],
                              meta=RequestMeta())
    text = client.get("/enrol/finish?rd=" + MFA_URL).get_data(as_text=True)
    assert "You are running out of recovery codes" in text
    assert re.search(r'id="create-codes" autofocus', text)
    assert "secondary" in _class_of(text, "skip-codes")


def test_the_passkey_refusal_names_the_password_way_in(app) -> None:  # type: ignore[no-untyped-def]
    from flask import render_template

    with app.test_request_context("/login"):
        text = render_template("login.html", rd="", error=None, session=None, passkey=True)
    said = re.search(r'id="passkey-login"[^>]*data-not-allowed="([^"]+)"', text, flags=re.S)
    assert said and "username and password" in said.group(1)
    script = (STATIC / "webauthn.js").read_text(encoding="utf-8")
    assert "button.dataset.notAllowed ||" in script  # the page's words, else the key's


def test_adding_a_device_after_the_fresh_window_asks_for_a_device_not_a_loop(  # type: ignore[no-untyped-def]
        mfa, client) -> None:
    """Item 5: "Add a device" (the hub, the factor page) more than
    ``fresh_auth_for_new_factor`` after signing in used to bounce between ``/enrol``,
    ``/login`` and ``/login/next`` for ever; now it asks for a device the user has, once."""
    secret = mfa.enrol_totp(mfa.issue_code())
    page = mfa.factor_page().get_data(as_text=True)
    assert mfa.post("/login/totp", page, code=mfa.totp(secret, 1), rd=MFA_URL).status_code \
        == 303
    mfa.clock.advance(minutes=20)  # the code's window and the fresh-login window are gone
    r = client.get("/enrol")
    assert r.status_code == 303 and r.headers["Location"].startswith("/login/next?rd=")
    assert r.headers["Location"].endswith("&fresh=1")
    page = client.get(r.headers["Location"])
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and 'id="fresh-needed"' in text and 'id="code"' in text
    r = mfa.post("/login/totp", text, code=mfa.totp(secret),
                 rd=re.search(r'name="rd" value="([^"]+)"', text).group(1))
    assert r.status_code == 303
    r = client.get(r.headers["Location"])  # proven: on to where the user was going
    assert r.status_code == 303 and r.headers["Location"].endswith("/enrol")
    text = client.get("/enrol").get_data(as_text=True)
    assert "Choose a sign-in device" in text and "Set up authenticator app" in text
    assert client.get("/login/next?rd=%2Fenrol&fresh=1").status_code == 303  # fresh: no ask


def test_removing_a_device_after_the_fresh_window_asks_for_a_device_then_removes(  # type: ignore[no-untyped-def]
        mfa, client) -> None:
    """Removing a device more than ``fresh_auth_for_new_factor`` after signing in used to
    send the user to /login, which sent a signed-in user straight back to My account: nothing
    removed, nothing said. Now it asks for a device once, says to choose Remove again, and
    the second Remove removes it."""
    secret = mfa.enrol_totp(mfa.issue_code())
    page = mfa.factor_page().get_data(as_text=True)
    assert mfa.post("/login/totp", page, code=mfa.totp(secret, 1), rd=MFA_URL).status_code \
        == 303
    mfa.clock.advance(minutes=20)
    account = client.get("/account").get_data(as_text=True)
    action = re.search(r'action="(/account/factors/[^"/]+/remove)"', account).group(1)
    r = mfa.post(action, account)
    assert r.status_code == 303 and r.headers["Location"].startswith("/login/next?rd=")
    assert r.headers["Location"].endswith("&fresh=1")
    assert mfa.services.mfa.factors.summary("alice").active  # nothing removed yet
    text = client.get(r.headers["Location"]).get_data(as_text=True)
    assert 'id="fresh-needed"' in text and "add or remove a sign-in device" in text
    rd = re.search(r'name="rd" value="([^"]+)"', text).group(1)
    wrong = client.post("/login/totp", data={"csrf_token": mfa.csrf(text), "rd": rd,
                                             "fresh": "1", "code": "000000"})
    assert wrong.status_code == 401  # a typo keeps saying why it asks
    assert 'id="fresh-needed"' in wrong.get_data(as_text=True)
    r = mfa.post("/login/totp", text, code=mfa.totp(secret),
                 rd=re.search(r'name="rd" value="([^"]+)"', text).group(1))
    r = client.get(r.headers["Location"])
    assert r.status_code == 303 and r.headers["Location"].endswith("/account?done=confirmed")
    account = client.get("/account?done=confirmed").get_data(as_text=True)
    assert "choose <strong>Remove</strong> again" in account
    r = mfa.post(action, account)
    assert r.status_code == 303 and r.headers["Location"] == "/login?rd=%2Faccount"
    assert not mfa.services.mfa.factors.summary("alice").active
