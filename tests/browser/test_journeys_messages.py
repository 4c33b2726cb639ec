"""Issue 17 items 6 and 12 walked in Chromium through nginx: each error says what to do
next, is tied to its field, and the page it is on leads on.

* ``xavi``: a wrong password keeps the username (before the password step the message stays
  the one generic sentence); a mistyped enrolment code and an **expired** one get different
  messages, the expired one saying to ask for a new code; a **replayed** authenticator code
  (the set-up code typed again) says to wait for the next code, and the next code works.
* ``zara``: a **failed passkey** sign-in, refused by the authenticator (user verification
  refused) and by the server (a key the server does not know signs), each says what to try
  (another passkey, or the username and password), and the password way in works.

Every authgate page on the way: a screenshot and the axe-core check (``journeys-msg-*``).
"""
from __future__ import annotations

import time
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.browser.conftest import Page, Stack, add_people, totp_now
from tests.browser.consoles_helpers import settle
from tests.browser.test_axe_every_page import refused_field
from tests.browser.test_journeys_add_key import leads_on, page_check
from tests.browser.test_webauthn_flow import (
    MFA_APP,
    STRONG_APP,
    arrive,
    login_url,
    sign_out,
    unb64,
)

pytestmark = pytest.mark.integration

PEOPLE = {"xavi": ("Xavi Staff", ["City-Staff"]), "zara": ("Zara Staff", ["City-Staff"])}
GENERIC_LOGIN = "The username or password is incorrect."


@pytest.fixture(scope="module")
def people(stack: Stack) -> Stack:
    return add_people(stack, PEOPLE)


def alert_text(page: Page, css: str = ".alert[role=alert]") -> str:
    return " ".join(str(page.wait_for(css).text).split())


def wrong_password_keeps_the_name(page: Page, stack: Stack, user: str, path: str) -> None:
    page.open(f"{stack.app}{path}")
    page.wait_url(login_url(stack, path))
    page.sign_in(user, "not the password")
    assert alert_text(page) == GENERIC_LOGIN  # one message before the password step
    assert page.find("#username").get_attribute("value") == user
    assert page.driver.execute_script("return document.activeElement.id") == "password"
    refused_field(page, "#password")
    page_check(page, "msg-wrong-password")
    leads_on(page, "form button[type=submit]")
    page.fill("#password", "browser-test-password-for-staff")
    page.click("form button[type=submit]")


def test_expired_code_and_replayed_code_say_what_to_do(people: Stack, browser: Page) -> None:
    stack, page, user = people, browser, "xavi"
    settle(page)
    wrong_password_keeps_the_name(page, stack, user, MFA_APP)
    page.wait_url(f"{stack.portal}/enrol?rd=")
    page.wait_for("#code")
    # A typo, then an expired code: two different messages, both tied to the field.
    page.fill("#code", "abcd-efgh-jkmn-pqrs")
    page.click("form button[type=submit]")
    typo = alert_text(page)
    assert "not accepted" in typo and "expired" not in typo, typo
    refused_field(page, "#code")
    page_check(page, "msg-enrol-code-typo")
    expired = stack.issue_code(user, ttl=timedelta(seconds=1))
    time.sleep(1.5)
    page.fill("#code", expired)
    page.click("form button[type=submit]")
    page.wait_text("has expired")
    message = alert_text(page)
    assert message != typo and "This enrolment code has expired" in message, message
    assert "Ask the IT service desk for a new one" in message, message
    refused_field(page, "#code")
    page_check(page, "msg-enrol-code-expired")
    leads_on(page, "form button[type=submit]")
    # The new code from the desk works in the same form.
    page.fill("#code", stack.issue_code(user))
    page.click("form button[type=submit]")
    page.wait_for("#app-name")
    page.click("form[action$='/enrol/totp/start'] button[type=submit]")
    secret = str(page.wait_for("#totp-secret").text.replace(" ", "").strip())
    setup_code = totp_now(secret)
    page.fill("#code", setup_code)
    page.find("#code").submit()
    page.wait_url(f"{stack.portal}/enrol/finish")
    page.click("#create-codes")
    page.wait_for("#codes-saved")  # ten argon2 hashes: the page comes when they are made
    page.click("#codes-saved")
    # Proving the app: the set-up code, still on the phone's screen, is typed again.
    page.wait_url(f"{stack.portal}/login/next?rd=")
    page.wait_for("#code")
    page.fill("#code", setup_code)
    page.find("#code").submit()
    replay = alert_text(page, "#factor-error")
    assert "already used" in replay and "Wait for the next code" in replay, replay
    refused_field(page, "#code")
    page_check(page, "msg-totp-replayed")
    leads_on(page, "form[action$='/login/totp'] button[type=submit]")
    page.fill("#code", totp_now(secret, offset_steps=1))  # the next code
    page.find("#code").submit()
    assert arrive(page, stack, MFA_APP)["Remote-User"] == user
    assert [r["reason"] for r in stack.audit(
        "event = 'login.totp' AND username = ? AND outcome = 'failure'", (user,))] \
        == ["code_replayed"]
    assert [r["reason"] for r in stack.audit(
        "event = 'enrol.code_redeemed' AND username = ?", (user,))] \
        == ["unknown_code", "code_expired", "redeemed"]


def passkey_refused(page: Page, name: str) -> str:
    """Click "Sign in with a passkey" on the login page; the refusal's text. The page stays
    the login page with its password form and the passkey button ready again."""
    page.wait_for("#passkey-login")
    page.click("#passkey-login")
    text = alert_text(page, "#webauthn-error")
    page.wait.until(lambda d: page.find("#passkey-login").is_enabled())
    assert "/login" in page.url and page.has("#password")
    page_check(page, name)
    leads_on(page, "#passkey-login")
    leads_on(page, "form button[type=submit]")
    return text


def test_a_failed_passkey_sign_in_says_what_to_try(people: Stack, browser: Page) -> None:
    stack, page, user = people, browser, "zara"
    settle(page)
    page.open(f"{stack.app}{STRONG_APP}")
    page.wait_url(login_url(stack, STRONG_APP))
    page.sign_in(user)
    page.wait_url(f"{stack.portal}/enrol?rd=")
    page.fill("#code", stack.issue_code(user))
    page.click("form button[type=submit]")
    page.wait_for("#webauthn-register")
    page.click("#webauthn-register")
    page.wait_url(f"{stack.portal}/enrol/finish")
    page.click("#create-codes")
    page.wait_for("#codes-saved")  # ten argon2 hashes: the page comes when they are made
    page.click("#codes-saved")
    page.wait_for("#webauthn-login")
    page.click("#webauthn-login")
    arrive(page, stack, STRONG_APP)
    [registered] = page.driver.get_credentials()
    sign_out(page, stack)

    # The authenticator refuses: the fingerprint or PIN check fails.
    page.open(f"{stack.app}{STRONG_APP}")
    page.wait_url(login_url(stack, STRONG_APP))
    page.driver.set_user_verified(False)
    said = passkey_refused(page, "msg-passkey-not-verified")
    assert "did not confirm it's you" in said and "username and password" in said, said
    # The server refuses: a key it does not know answers for the registered credential id.
    page.authenticator()
    foreign = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption())
    from selenium.webdriver.common.virtual_authenticator import Credential

    page.driver.add_credential(Credential.create_resident_credential(
        unb64(registered.id), "localhost", unb64(registered.user_handle or ""), foreign, 1000))
    said = passkey_refused(page, "msg-passkey-refused")
    assert "passkey was not accepted" in said and "username and password" in said, said
    assert [r["event"] for r in stack.audit(  # the precise reason, for the audit only
        "outcome = 'failure' AND reason = 'bad_signature' AND username = ?", (user,))] \
        == ["login.webauthn"]
    # What it says works: username and password, then the genuine key.
    page.authenticator()
    page.driver.add_credential(registered)
    page.sign_in(user)
    page.wait_url(f"{stack.portal}/login/next?rd=")
    page.wait_for("#webauthn-login")
    page.click("#webauthn-login")
    assert arrive(page, stack, STRONG_APP)["Remote-User"] == user  # no false alarm on the way
