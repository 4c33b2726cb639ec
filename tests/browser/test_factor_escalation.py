"""Issue 14 finding 3 in a real browser, through nginx: a password + TOTP session (what a
real-time phisher holds) cannot turn itself into phishing-resistant access by registering a
security key. Chromium's virtual authenticator claims user verification, as a phisher's
software authenticator would."""
from __future__ import annotations

import pytest

from authgate.core.values import Level
from tests.browser.conftest import TOTP_ADMIN, Page, Stack, totp_now
from tests.browser.test_webauthn_flow import (
    MFA_APP,
    STRONG_APP,
    arrive,
    enrol_code_page,
    password_step,
    setup_totp,
    sign_out,
    use_key,
)

pytestmark = pytest.mark.integration

#: the enrolment page's own script, run by hand: ask for registration options
ASK_FOR_OPTIONS = """
const done = arguments[arguments.length - 1];
fetch("/enrol/webauthn/options", {method: "POST", body: "{}", headers: {
    "Content-Type": "application/json", "X-CSRFToken": document.body.dataset.csrf}})
  .then(async r => done({status: r.status, body: await r.text()}), e => done({error: String(e)}));
"""


def levels(stack: Stack, user: str) -> list[Level]:
    return [s.level for s in stack.services.sessions.sessions_of(user)]


def test_totp_session_registers_a_key_and_is_still_mfa(stack: Stack, browser: Page) -> None:
    user = TOTP_ADMIN
    enrol_code_page(browser, stack, user)
    secret = setup_totp(browser, "Kai's phone")
    sign_out(browser, stack)

    # Password + TOTP: an mfa session, fresh.
    password_step(browser, stack, user, MFA_APP)
    browser.wait_for("#code")
    browser.fill("#code", totp_now(secret, offset_steps=1))
    browser.find("#code").submit()
    assert arrive(browser, stack, MFA_APP)["Remote-User"] == user
    assert levels(stack, user) == [Level.MFA]

    # Without an admin code the page offers no key, and the endpoint refuses a script.
    browser.open(f"{stack.portal}/enrol")
    browser.wait_for("#key-needs-code")
    assert not browser.has("#webauthn-register")
    answer = browser.driver.execute_async_script(ASK_FOR_OPTIONS)
    assert answer.get("status") == 403, answer
    assert [r["reason"] for r in stack.audit(
        "event = 'enrol.refused' AND username = ?", (user,))] == ["webauthn_needs_code"]

    # With the admin's code the key is registered, and the session is still mfa.
    browser.fill("#code", stack.issue_code(user))
    browser.find("#code").submit()
    browser.wait_for("#webauthn-register")
    browser.click("#webauthn-register")
    browser.wait_url(f"{stack.portal}/enrol/finish")
    assert [r["reason"] for r in stack.audit(
        "event = 'factor.added' AND username = ?", (user,))] == ["totp", "webauthn"]
    assert levels(stack, user) == [Level.MFA]
    assert stack.verify(STRONG_APP, browser.cookies()).status_code == 401
    nginx = stack.through_nginx(STRONG_APP, browser.cookies())
    assert nginx.status_code == 302 and "/login?rd=" in nginx.headers["Location"]

    # The admin console is refused: it asks for the key (a step-up), not served.
    browser.open(f"{stack.portal}/admin")
    browser.wait_url(f"{stack.portal}/login/next?rd=")
    browser.wait_for("#webauthn-login")
    assert "needs your security key" in browser.text()
    assert not browser.has("#q")
    browser.screenshot("14-key-registered-still-mfa")

    # Proving the key in the step-up is what raises the session.
    use_key(browser)
    browser.wait_url(f"{stack.portal}/admin")
    browser.wait_for("#q")
    assert levels(stack, user) == [Level.PHISHING_RESISTANT]
