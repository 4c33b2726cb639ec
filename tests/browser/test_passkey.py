"""Passkey sign-in (discoverable credential + user verification), without typing anything."""
from __future__ import annotations

import pytest

from tests.browser.conftest import Page, Stack
from tests.browser.test_webauthn_flow import (
    STRONG_APP,
    arrive,
    enrol_key,
    go_to_app,
    login_url,
    sign_out,
)

pytestmark = pytest.mark.integration
USER = "jon"


def test_passkey_signs_in_without_username_or_password(stack: Stack, browser: Page) -> None:
    enrol_key(browser, stack, USER, name="Jon's laptop")  # resident key, user verification
    sign_out(browser, stack)
    go_to_app(browser, stack, STRONG_APP)
    browser.wait_url(login_url(stack, STRONG_APP))
    browser.wait_for("#passkey-login")
    browser.screenshot("13-login-with-passkey")
    browser.click("#passkey-login")
    seen = arrive(browser, stack, STRONG_APP)  # phishing-resistant app, straight in
    assert seen["Remote-User"] == USER
    [row] = stack.audit("event = 'login.passkey' AND username = ?", (USER,))
    assert (row["outcome"], row["reason"]) == ("success", "passkey_uv")
    assert stack.audit("event = 'login.password' AND username = ? AND outcome = 'success'",
                       (USER,))  # only the enrolment sign-in used a password
