"""Second factors in a real browser, through nginx (issue 6, "How it is judged").

Headless Chromium with a virtual authenticator; the sample app at ``http://localhost:APP``
behind nginx ``auth_request``; the portal at ``http://localhost:PORTAL``. Every test signs in
its own staff account (the per-user second-factor throttle must not leak between tests).
Screenshots of every page a city employee meets go to ``test-artifacts/screenshots/``.
"""
from __future__ import annotations

import base64
import time
from typing import Any
from urllib.parse import quote

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.browser.conftest import Page, Stack, totp_now

pytestmark = pytest.mark.integration

MFA_APP = "/mfa/records/whoami.json"
STRONG_APP = "/strong/payroll/whoami.json"


# -- steps a user takes -------------------------------------------------------------------
def go_to_app(browser: Page, stack: Stack, path: str) -> None:
    """Open an app URL; anonymous, nginx sends the browser to the portal's login page."""
    browser.open(f"{stack.app}{path}")


def login_url(stack: Stack, path: str) -> str:
    return f"{stack.portal}/login?rd={quote(stack.app + path, safe='')}"


def sign_out(browser: Page, stack: Stack) -> None:
    browser.open(f"{stack.portal}/logout")
    browser.click("form button[type=submit]")
    browser.wait_for("h1")
    assert "You are signed out" in browser.text()
    assert not any(n.startswith("__Host-authgate_session") for n in browser.cookies())


def enrol_code_page(browser: Page, stack: Stack, user: str, path: str = MFA_APP, *,
                    shots: bool = False) -> None:
    """Password, then (no factor yet) the enrolment-code page; type the admin's code."""
    go_to_app(browser, stack, path)
    browser.wait_url(login_url(stack, path))
    browser.sign_in(user, shot="01-login" if shots else None)
    browser.wait_url(f"{stack.portal}/enrol?rd=")
    browser.wait_for("#code")
    if shots:
        browser.screenshot("02-enrolment-code")
    browser.fill("#code", stack.issue_code(user))
    browser.click("form button[type=submit]")
    browser.wait_for("#webauthn-register")


def enrol_key(browser: Page, stack: Stack, user: str, path: str = MFA_APP, *,
              shots: bool = False, name: str = "") -> None:
    enrol_code_page(browser, stack, user, path, shots=shots)
    if name:
        browser.fill("#key-name", name)
    if shots:
        browser.screenshot("03-choose-device")
    browser.click("#webauthn-register")
    browser.wait_url(f"{stack.portal}/enrol/finish")
    browser.wait_for("h1")


def create_recovery_codes(browser: Page, *, shot: bool = False) -> list[str]:
    """On /enrol/finish: ask for recovery codes and read them."""
    browser.click("form button[type=submit]")
    browser.wait_for("#recovery-codes")
    if shot:
        browser.screenshot("06-recovery-codes")
    codes = [li.text.strip() for li in browser.driver.find_elements("css selector",
                                                                     "#recovery-codes li")]
    assert len(codes) == 10 and len(set(codes)) == 10, codes
    return codes


def setup_totp(browser: Page, name: str, *, shot: bool = False) -> str:
    """On the choose page: set up an authenticator app; the code comes from oathtool."""
    browser.fill("#app-name", name)
    browser.click("form[action$='/enrol/totp/start'] button[type=submit]")
    secret = str(browser.wait_for("#totp-secret").text.strip())
    qr = browser.find(".qr svg")
    assert qr.is_displayed() and qr.size["width"] >= 150
    if shot:
        browser.screenshot("04-totp-setup")
    browser.fill("#code", totp_now(secret))
    browser.find("#code").submit()
    browser.wait_url(f"{browser.stack.portal}/enrol/finish")
    browser.wait_text("ready")
    return secret


def password_step(browser: Page, stack: Stack, user: str, path: str) -> None:
    go_to_app(browser, stack, path)
    browser.wait_url(login_url(stack, path))
    browser.sign_in(user)
    browser.wait_url(f"{stack.portal}/login/next?rd=")


def past_warning(browser: Page) -> None:
    """The "check your recent sign-ins" page appears after failures: read it, continue."""
    if browser.has("a.button") and "Check your recent sign-ins" in browser.text():
        browser.click("a.button")


def use_key(browser: Page) -> None:
    browser.wait_for("#webauthn-login")
    browser.click("#webauthn-login")


def arrive(browser: Page, stack: Stack, path: str) -> dict[str, Any]:
    """Wait for the app's own JSON page and return what nginx told the app."""
    browser.wait_url(f"{stack.app}{path}")
    seen = browser.json()
    assert seen["app"] == "sample" and seen["path"] == path
    return dict(seen["headers"])


def refused_in_page(browser: Page, stack: Stack, path: str) -> str:
    """The factor page shows an error and stays where it is; the session stays below."""
    error = browser.wait_for("#webauthn-error")
    time.sleep(0.2)  # nothing navigates away afterwards
    assert browser.url.startswith(f"{stack.portal}/login/next?rd="), browser.url
    assert browser.has("#webauthn-login")
    assert stack.verify(path, browser.cookies()).status_code == 401
    nginx = stack.through_nginx(path, browser.cookies())
    assert nginx.status_code == 302 and nginx.headers["Location"].startswith(
        f"{stack.portal}/login?rd="), (nginx.status_code, nginx.headers)
    return str(error.text)


def webauthn_audit(stack: Stack, user: str, outcome: str) -> list[str]:
    return [r["reason"] for r in stack.audit(
        "event = 'login.webauthn' AND username = ? AND outcome = ?", (user, outcome))]


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def session_cookie(browser: Page) -> str:
    [value] = [v for k, v in browser.cookies().items() if k == "__Host-authgate_session"]
    return value


# -- the judged flows ---------------------------------------------------------------------
def test_enrol_key_with_admin_code_sign_in_again_and_open_strong_app(
        stack: Stack, browser: Page) -> None:
    user = "alice"
    # Password, admin's enrolment code, security key: the first enrolment needs all three.
    enrol_key(browser, stack, user, shots=True, name="Alice's laptop")
    [added] = stack.audit("event = 'factor.added' AND username = ?", (user,))
    assert added["outcome"] == "success" and added["reason"] == "webauthn"
    redeemed = stack.audit("event LIKE 'enrol.code%' AND username = ? AND outcome = 'success'",
                           (user,))
    assert [r["event"] for r in redeemed][-1] != "enrol.code_issued", redeemed
    browser.screenshot("05-enrol-finished")
    create_recovery_codes(browser, shot=True)
    # "I have saved them, continue" → registering raised nothing (issue 14 finding 3): the
    # new key is proven in the normal factor step, then the app the user was opening opens.
    browser.click("a.button")
    use_key(browser)
    assert arrive(browser, stack, MFA_APP)["Remote-User"] == user
    browser.open(f"{stack.portal}/account")
    browser.wait_url(f"{stack.portal}/account")
    assert "Alice's laptop" in browser.text() and "Security key / passkey" in browser.text()
    browser.screenshot("07-account")

    # Sign out, sign in again with the key.
    sign_out(browser, stack)
    go_to_app(browser, stack, MFA_APP)
    browser.wait_url(login_url(stack, MFA_APP))
    password_step(browser, stack, user, MFA_APP)
    browser.wait_for("#webauthn-login")
    assert browser.has("#code") is False  # no authenticator app enrolled: no code form
    browser.screenshot("08-factor-webauthn")
    before = session_cookie(browser)
    use_key(browser)
    seen = arrive(browser, stack, MFA_APP)
    assert seen["Remote-User"] == user and seen["Remote-Groups"] == "City-Staff"
    assert session_cookie(browser) != before  # a new session id after the factor

    # UV was performed: the phishing-resistant app opens without asking again.
    go_to_app(browser, stack, STRONG_APP)
    assert arrive(browser, stack, STRONG_APP)["Remote-User"] == user
    assert stack.verify(STRONG_APP, browser.cookies()).status_code == 200
    assert webauthn_audit(stack, user, "success") == ["webauthn_uv", "webauthn_uv"]
    assert webauthn_audit(stack, user, "failure") == []


def test_step_up_from_authenticator_app_to_phishing_resistant(stack: Stack,
                                                              browser: Page) -> None:
    """Two devices: an authenticator app (mfa) and a key. A session that holds mfa and
    reaches a phishing-resistant app is asked for the key only, then let through."""
    user = "bruno"
    enrol_code_page(browser, stack, user)
    secret = setup_totp(browser, "Bruno's phone")
    # Still inside the enrolment window: add a key as the second device.
    browser.open(f"{stack.portal}/enrol")
    browser.wait_for("#webauthn-register")
    browser.click("#webauthn-register")
    browser.wait_url(f"{stack.portal}/enrol/finish")
    kinds = sorted(r["reason"] for r in stack.audit(
        "event = 'factor.added' AND username = ?", (user,)))
    assert kinds == ["totp", "webauthn"], kinds
    sign_out(browser, stack)

    # The authenticator app: enough for /mfa/, not for /strong/.
    password_step(browser, stack, user, MFA_APP)
    browser.wait_for("#code")
    assert browser.has("#webauthn-login")  # both devices offered
    browser.fill("#code", totp_now(secret, offset_steps=1))
    browser.find("#code").submit()
    assert arrive(browser, stack, MFA_APP)["Remote-User"] == user
    assert stack.verify(STRONG_APP, browser.cookies()).status_code == 401

    # Step-up: only the key is offered, no typed codes.
    mfa_cookie = session_cookie(browser)
    go_to_app(browser, stack, STRONG_APP)
    browser.wait_url(f"{stack.portal}/login/next?rd=")
    browser.wait_for("#webauthn-login")
    assert "needs your security key" in browser.text()
    assert not browser.has("#code") and not browser.has("#recovery")
    browser.screenshot("09-factor-step-up")
    use_key(browser)
    assert arrive(browser, stack, STRONG_APP)["Remote-User"] == user
    assert session_cookie(browser) != mfa_cookie
    assert stack.verify(STRONG_APP, browser.cookies()).status_code == 200
    assert webauthn_audit(stack, user, "success") == ["webauthn_uv"]


def test_without_user_verification_the_strong_app_is_refused(stack: Stack,
                                                              browser: Page) -> None:
    user = "chen"
    enrol_key(browser, stack, user)
    sign_out(browser, stack)

    browser.driver.set_user_verified(False)  # the fingerprint / PIN check fails
    password_step(browser, stack, user, STRONG_APP)
    use_key(browser)
    assert "did not confirm it" in refused_in_page(browser, stack, STRONG_APP)
    browser.screenshot("10-factor-refused")

    # A modified page that asks the authenticator for no UV at all: the assertion reaches
    # the server with UV clear and the server refuses it (and audits why).
    browser.open(browser.url)
    button = browser.wait_for("#webauthn-login")
    result = browser.driver.execute_async_script(ASSERT_WITHOUT_UV,
                                                 button.get_attribute("data-options"),
                                                 button.get_attribute("data-verify"))
    assert result.get("status") == 401, result
    assert "not accepted" in result["body"]
    assert webauthn_audit(stack, user, "failure") == ["user_not_verified"]
    assert stack.verify(STRONG_APP, browser.cookies()).status_code == 401
    assert stack.verify(MFA_APP, browser.cookies()).status_code == 401
    assert webauthn_audit(stack, user, "success") == []


ASSERT_WITHOUT_UV = """
const [optionsUrl, verifyUrl, done] = arguments;
const csrf = document.querySelector("input[name=csrf_token]")?.value || document.body.dataset.csrf;
const headers = {"Content-Type": "application/json", "X-CSRFToken": csrf};
(async () => {
  const options = await (await fetch(optionsUrl, {method: "POST", headers, body: "{}"})).json();
  const publicKey = PublicKeyCredential.parseRequestOptionsFromJSON(options);
  publicKey.userVerification = "discouraged";
  const credential = await navigator.credentials.get({publicKey});
  const answer = await fetch(verifyUrl, {method: "POST", headers,
                                         body: JSON.stringify(credential.toJSON())});
  done({status: answer.status, body: await answer.text()});
})().catch(e => done({error: String(e)}));
"""


def test_cloned_key_with_a_stale_sign_count_is_refused_and_audited(stack: Stack,
                                                                   browser: Page) -> None:
    user = "dana"
    enrol_key(browser, stack, user)
    sign_out(browser, stack)
    password_step(browser, stack, user, MFA_APP)
    use_key(browser)
    arrive(browser, stack, MFA_APP)
    [clone] = browser.driver.get_credentials()  # a copy of the key, its count as it is now
    stale_count = clone.sign_count
    sign_out(browser, stack)

    # The genuine key is used once more: the server's count moves past the copy's.
    password_step(browser, stack, user, MFA_APP)
    use_key(browser)
    arrive(browser, stack, MFA_APP)
    [genuine] = browser.driver.get_credentials()
    assert genuine.sign_count > stale_count
    sign_out(browser, stack)

    # The copy, in another authenticator, with its old count.
    browser.authenticator()
    browser.driver.add_credential(clone)
    assert browser.driver.get_credentials()[0].sign_count == stale_count
    password_step(browser, stack, user, MFA_APP)
    use_key(browser)
    assert "not accepted" in refused_in_page(browser, stack, MFA_APP)
    assert webauthn_audit(stack, user, "failure") == ["sign_count_regressed"]
    [record] = stack.audit("event = 'login.webauthn' AND username = ? AND outcome = 'failure'",
                           (user,))
    assert record["client_ip"] in ("127.0.0.1", "::1")

    # The genuine key still works, and the user is told about the refused attempt first.
    browser.authenticator()
    browser.driver.add_credential(genuine)
    browser.open(browser.url)
    use_key(browser)
    browser.wait_text("Check your recent sign-ins")
    assert browser.url.startswith(f"{stack.portal}/login/next?")
    assert "1 failed sign-in attempt" in " ".join(browser.text().split())
    browser.screenshot("11-recent-failures-warning")
    past_warning(browser)
    assert arrive(browser, stack, MFA_APP)["Remote-User"] == user


def test_a_second_unregistered_authenticator_is_refused(stack: Stack, browser: Page) -> None:
    user = "emil"
    enrol_key(browser, stack, user)
    [registered] = browser.driver.get_credentials()
    sign_out(browser, stack)

    # A brand-new authenticator: it holds nothing the server allows, nothing is signed in.
    browser.authenticator()
    password_step(browser, stack, user, STRONG_APP)
    use_key(browser)
    refused_in_page(browser, stack, STRONG_APP)
    assert stack.verify(MFA_APP, browser.cookies()).status_code == 401

    # An authenticator claiming the registered credential id, with its own key: the server
    # checks the signature against the key registered at enrolment and refuses.
    from selenium.webdriver.common.virtual_authenticator import Credential

    browser.authenticator()
    foreign = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption())
    browser.driver.add_credential(Credential.create_resident_credential(
        unb64(registered.id), "localhost", unb64(registered.user_handle or ""), foreign, 1000))
    browser.open(browser.url)
    use_key(browser)
    assert "not accepted" in refused_in_page(browser, stack, STRONG_APP)
    assert stack.verify(MFA_APP, browser.cookies()).status_code == 401
    assert webauthn_audit(stack, user, "failure") == ["bad_signature"]
    assert webauthn_audit(stack, user, "success") == []


def test_authenticator_app_enrol_and_sign_in_with_oathtool_codes(stack: Stack,
                                                                 browser: Page) -> None:
    user = "farah"
    enrol_code_page(browser, stack, user)
    secret = setup_totp(browser, "Farah's phone", shot=True)
    [added] = stack.audit("event = 'factor.added' AND username = ?", (user,))
    assert added["reason"] == "totp"
    sign_out(browser, stack)

    # Sign in with a fresh code (the next time step: the set-up code is spent).
    password_step(browser, stack, user, MFA_APP)
    browser.wait_for("#code")
    assert not browser.has("#webauthn-login")
    browser.screenshot("12-factor-totp")
    fresh = totp_now(secret, offset_steps=1)
    browser.fill("#code", fresh)
    browser.click("form button[type=submit]")
    assert arrive(browser, stack, MFA_APP)["Remote-User"] == user
    # A typed code never opens a phishing-resistant app.
    assert stack.verify(STRONG_APP, browser.cookies()).status_code == 401
    sign_out(browser, stack)

    # The same code again, and a code from three steps ago: refused.
    password_step(browser, stack, user, MFA_APP)
    for code in (fresh, totp_now(secret, offset_steps=-3)):
        browser.fill("#code", code)
        browser.click("form button[type=submit]")
        alert = browser.wait_for(".alert")
        assert "not accepted" in alert.text
        assert browser.url.startswith(f"{stack.portal}/login/totp"), browser.url
        assert stack.verify(MFA_APP, browser.cookies()).status_code == 401
    reasons = [r["reason"] for r in stack.audit(
        "event = 'login.totp' AND username = ? AND outcome = 'failure'", (user,))]
    assert len(reasons) == 2 and reasons[0] == "code_replayed", reasons
