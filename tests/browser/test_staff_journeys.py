"""Staff journeys in a real browser, through nginx (issue 17 items 2, 4, 5, 6, 7).

Each journey walks its error path too and saves a screenshot per page
(``test-artifacts/screenshots/staff-*.png``). The accounts are this file's own (``lena``,
``milo``), so the per-user throttle and factor state never leak into other tests.
"""
from __future__ import annotations

import pytest

from tests.browser.conftest import Page, Stack, totp_now
from tests.browser.test_webauthn_flow import MFA_APP, go_to_app, login_url, sign_out

pytestmark = pytest.mark.integration


def _active_id(browser: Page) -> str:
    return str(browser.driver.execute_script("return document.activeElement.id"))


def _wrong_password_then_right(browser: Page, stack: Stack, user: str, shot: str) -> None:
    """Item 6: a wrong password keeps the username and puts the cursor in the password."""
    go_to_app(browser, stack, MFA_APP)
    browser.wait_url(login_url(stack, MFA_APP))
    browser.sign_in(user, "not my password")
    browser.wait_for(".alert")
    assert browser.find("#username").get_attribute("value") == user
    assert _active_id(browser) == "password"
    browser.screenshot(shot)
    browser.fill("#password", "browser-test-password-for-staff")
    browser.click("form button[type=submit]")


def _totp_setup_with_a_wrong_code(browser: Page, stack: Stack, user: str) -> str:
    """Item 4: the wrong code is shown next to the field; QR code and key stay the same."""
    browser.wait_url(f"{stack.portal}/enrol?rd=")
    browser.fill("#code", stack.issue_code(user))
    browser.click("form button[type=submit]")
    browser.wait_for("#app-name")
    browser.fill("#app-name", "Phone")
    browser.click("form[action$='/enrol/totp/start'] button[type=submit]")
    secret = str(browser.wait_for("#totp-secret").text.strip())
    browser.screenshot("staff-02-totp-setup")
    wrong = "000000" if totp_now(secret) != "000000" else "111111"
    browser.fill("#code", wrong)
    browser.find("#code").submit()
    error = browser.wait_for("#code-error")
    assert "didn't match" in error.text
    assert browser.find("#totp-secret").text.strip() == secret
    assert browser.find(".qr svg").is_displayed()
    assert browser.find("#code").get_attribute("aria-describedby") == "code-error"
    browser.screenshot("staff-03-totp-wrong-code")
    browser.fill("#code", totp_now(secret))
    browser.find("#code").submit()
    browser.wait_url(f"{stack.portal}/enrol/finish")
    return secret


def _recovery_codes_step(browser: Page, stack: Stack) -> list[str]:
    """Item 7: creating codes is the default step; Print and Download are offered."""
    browser.wait_for("#create-codes")
    assert "One more step" in browser.text() and _active_id(browser) == "create-codes"
    browser.screenshot("staff-04-recovery-default-step")
    browser.click("#create-codes")
    browser.wait_for("#recovery-codes")
    assert browser.find("#print-codes").is_displayed()
    assert browser.find("#download-codes").is_displayed()
    browser.screenshot("staff-05-recovery-codes")
    codes = [li.text.strip() for li in browser.driver.find_elements("css selector",
                                                                     "#recovery-codes li")]
    assert len(codes) == 10
    errors = [e for e in browser.driver.get_log("browser") if "Content Security" in e["message"]]
    assert errors == []
    browser.click("#codes-saved")
    return codes


def test_first_sign_in_setup_retry_recovery_codes_and_the_hub(stack: Stack,
                                                              browser: Page) -> None:
    user = "lena"
    _wrong_password_then_right(browser, stack, user, "staff-01-wrong-password")
    secret = _totp_setup_with_a_wrong_code(browser, stack, user)
    codes = _recovery_codes_step(browser, stack)
    # proving the new factor: a wrong code first (own typo), then the right one
    field = "#code"
    browser.wait_for(field)
    browser.fill(field, "000000" if totp_now(secret, offset_steps=1) != "000000" else "111111")
    browser.find(field).submit()
    browser.wait_for(".alert")
    browser.screenshot("staff-06-factor-wrong-code")
    browser.fill(field, totp_now(secret, offset_steps=1))
    browser.find(field).submit()
    # item 2: the user's own typos of this sign-in are no warning: straight to the app
    browser.wait_url(f"{stack.app}{MFA_APP}")
    # item 5: the portal home is a hub; "My account" is in the header
    browser.open(f"{stack.portal}/")
    browser.wait_for(".hub")
    assert "My sign-in devices" in browser.text() and "Recent activity" in browser.text()
    assert "No failed sign-ins since you signed in" in browser.text()  # own typos: no alarm
    browser.screenshot("staff-07-home-hub")
    browser.click("header nav a[href='/account']")
    browser.wait_url(f"{stack.portal}/account")
    browser.wait_for("#recent")
    browser.screenshot("staff-08-my-account")
    sign_out(browser, stack)
    # item 7: a recovery-code sign-in shows what is left
    go_to_app(browser, stack, MFA_APP)
    browser.sign_in(user)
    left = _recovery_sign_in(browser, stack, codes[0])
    assert "9 recovery codes left" in " ".join(left.split())
    browser.screenshot("staff-09-recovery-code-left")
    browser.click("#continue")
    browser.wait_url(f"{stack.app}{MFA_APP}")


def _recovery_sign_in(browser: Page, stack: Stack, code: str) -> str:
    """On the factor page: open "Lost your device?", type a recovery code; the arrival page
    says how many are left (item 7). Returns the page text."""
    browser.wait_url(f"{stack.portal}/login/next?rd=")
    browser.click("details summary")
    browser.wait_for("#recovery")
    browser.fill("#recovery", code)
    browser.find("#recovery").submit()
    browser.wait_for("#recovery-left")
    return browser.text()


def test_someone_elses_failure_is_shown_once(stack: Stack, browser: Page) -> None:
    """Item 2: a failure from another browser is shown at the next sign-in (here with a
    recovery code: every factor completes a sign-in), and not at the one after."""
    import requests

    from tests.fixtures.net import csrf_token

    user = "milo"
    go_to_app(browser, stack, MFA_APP)
    browser.sign_in(user)
    secret = _totp_setup_with_a_wrong_code(browser, stack, user)
    codes = _recovery_codes_step(browser, stack)
    browser.wait_for("#code")
    browser.fill("#code", totp_now(secret, offset_steps=1))
    browser.find("#code").submit()
    browser.wait_url(f"{stack.app}{MFA_APP}")
    sign_out(browser, stack)
    # Another browser guesses the password (its Secure cookies sent by hand: requests, unlike
    # Chromium, keeps them from http://localhost).
    form = requests.get(f"{stack.portal}/login", timeout=5)
    cookie = "; ".join(f"{c.name}={c.value}" for c in form.cookies)
    guess = requests.post(f"{stack.portal}/login", headers={"Cookie": cookie}, timeout=5,
                          data={"csrf_token": csrf_token(form.text), "username": user,
                                "password": "a guess", "rd": ""}, allow_redirects=False)
    assert guess.status_code == 401, guess.text[:300]
    for code, shown in ((codes[0], True), (codes[1], False)):
        go_to_app(browser, stack, MFA_APP)
        browser.sign_in(user)
        text = " ".join(_recovery_sign_in(browser, stack, code).split())
        assert ("Check your recent sign-ins" in text) is shown
        if shown:
            assert "1 failed sign-in attempt" in text
            browser.screenshot("staff-10-someone-elses-failure")
        else:
            browser.screenshot("staff-11-no-warning-the-second-time")
        browser.click("#continue")
        browser.wait_url(f"{stack.app}{MFA_APP}")
        sign_out(browser, stack)
