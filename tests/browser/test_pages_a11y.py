"""The pages without a mouse, without unlabelled fields, without anything from elsewhere.

Keyboard only (Tab / Enter) through the login form and the security-key button; every
visible form field has a label; every resource a page loads comes from the portal itself
(no CDN, no font service) and the strict CSP never has to block anything; and axe-core
finds no serious or critical WCAG 2.1 A/AA violation (tests/browser/axe.py) on any page
``audit_page`` looks at (the console tests use it too).
"""
from __future__ import annotations

from typing import Any

import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.keys import Keys

from tests.browser.axe import check_page
from tests.browser.conftest import PASSWORD, Page, Stack, totp_now
from tests.browser.test_webauthn_flow import (
    MFA_APP,
    arrive,
    enrol_code_page,
    login_url,
    setup_totp,
    sign_out,
)

pytestmark = pytest.mark.integration

UNLABELLED = """
return Array.from(document.querySelectorAll("input, select, textarea"))
  .filter(el => el.type !== "hidden")
  .filter(el => !(el.labels && el.labels.length) && !el.getAttribute("aria-label")
                && !el.getAttribute("aria-labelledby"))
  .map(el => el.outerHTML);
"""
NAMELESS_BUTTONS = """
return Array.from(document.querySelectorAll("button, a[href]"))
  .filter(el => !(el.innerText || el.getAttribute("aria-label") || "").trim())
  .map(el => el.outerHTML);
"""
RESOURCES = """
return [location.origin].concat(performance.getEntriesByType("resource").map(e => e.name));
"""


def audit_page(browser: Page, stack: Stack, seen: dict[str, Any]) -> None:
    """Labels, names, same-origin resources and no CSP refusal on the current page."""
    browser.driver.execute_script("return document.readyState")
    where = browser.url.split("?")[0]
    origin, *resources = browser.driver.execute_script(RESOURCES)
    assert origin == stack.portal, where
    foreign = [r for r in resources if not r.startswith(stack.portal + "/")]
    assert not foreign, (where, foreign)
    assert browser.driver.execute_script(UNLABELLED) == [], where
    assert browser.driver.execute_script(NAMELESS_BUTTONS) == [], where
    assert browser.driver.find_element("css selector", "html").get_attribute("lang") == "en"
    assert browser.driver.title.strip(), where
    seen[f"{where} {browser.driver.title}"] = len(resources)
    path = where.removeprefix(stack.portal).strip("/").replace("/", "-") or "home"
    check_page(browser, f"a11y-{path}-{len(seen):02d}")


def csp_refusals(browser: Page) -> list[str]:
    return [e["message"] for e in browser.driver.get_log("browser")
            if "Content Security Policy" in e["message"] or "Refused to" in e["message"]]


def press(browser: Page, *keys: str) -> None:
    ActionChains(browser.driver).send_keys(*keys).perform()


def focused(browser: Page) -> Any:
    return browser.driver.switch_to.active_element


def tab_to(browser: Page, element_id: str, limit: int = 15) -> None:
    for _ in range(limit):
        if focused(browser).get_attribute("id") == element_id:
            return
        press(browser, Keys.TAB)
    raise AssertionError(f"#{element_id} never got the keyboard focus")


def test_every_page_is_labelled_and_loads_nothing_from_elsewhere(stack: Stack,
                                                                 browser: Page) -> None:
    user = "gita"
    seen: dict[str, Any] = {}
    browser.open(f"{stack.app}{MFA_APP}")
    browser.sign_in(user)
    browser.wait_url(f"{stack.portal}/enrol?rd=")
    browser.wait_for("#code")
    audit_page(browser, stack, seen)  # the enrolment code
    # Another person's code, then a made-up one: refused, on the same page, with a message.
    for wrong in (stack.issue_code("ines"), "abcd-efgh-jkmn-pqrs"):
        browser.fill("#code", wrong)
        browser.click("form button[type=submit]")
        alert = browser.wait_for(".alert")
        assert "not accepted" in alert.text and browser.has("#code")
        audit_page(browser, stack, seen)
    refusals = stack.audit("event = 'enrol.code_redeemed' AND username = ? AND outcome = "
                           "'failure'", (user,))
    assert len(refusals) == 2, [dict(r) for r in refusals]
    browser.fill("#code", stack.issue_code(user))
    browser.click("form button[type=submit]")
    browser.wait_for("#webauthn-register")
    audit_page(browser, stack, seen)  # choose a device
    browser.fill("#app-name", "Gita's phone")
    browser.click("form[action$='/enrol/totp/start'] button[type=submit]")
    browser.wait_for("#totp-secret")
    audit_page(browser, stack, seen)  # TOTP set-up with its inline SVG QR code
    browser.driver.back()
    browser.wait_for("#webauthn-register")
    browser.click("#webauthn-register")
    browser.wait_url(f"{stack.portal}/enrol/finish")
    browser.wait_for("h1")
    audit_page(browser, stack, seen)  # device ready
    browser.click("a.button.secondary")  # continue: prove the new key (issue 14)
    browser.wait_for("#webauthn-login")
    browser.click("#webauthn-login")
    browser.wait_url(f"{stack.app}{MFA_APP}")
    browser.open(f"{stack.portal}/account")
    browser.wait_for("#devices")
    audit_page(browser, stack, seen)  # self-service
    browser.open(f"{stack.portal}/logout")
    browser.wait_for("h1")
    audit_page(browser, stack, seen)
    sign_out(browser, stack)
    audit_page(browser, stack, seen)  # signed out
    browser.open(f"{stack.app}{MFA_APP}")
    browser.sign_in(user)
    browser.wait_for("#webauthn-login")
    audit_page(browser, stack, seen)  # factor page
    browser.open(f"{stack.portal}/login")
    browser.wait_for("h1")
    audit_page(browser, stack, seen)  # login (signed in at password level: the form)
    assert len(seen) >= 8, seen
    assert csp_refusals(browser) == []


def test_keyboard_only_sign_in_with_password_and_security_key(stack: Stack,
                                                              browser: Page) -> None:
    user = "hugo"
    enrol_code_page(browser, stack, user)
    secret = setup_totp(browser, "Hugo's phone")
    browser.open(f"{stack.portal}/enrol")
    browser.wait_for("#webauthn-register")
    browser.click("#webauthn-register")
    browser.wait_url(f"{stack.portal}/enrol/finish")
    sign_out(browser, stack)

    # The first Tab on a page reaches the skip link, and it becomes visible.
    press(browser, Keys.TAB)
    skip = focused(browser)
    assert skip.get_attribute("class") == "skip" and skip.is_displayed()
    assert skip.location["x"] >= 0

    # Login: the username field has the focus; type, Tab, type, Enter.
    browser.open(f"{stack.app}{MFA_APP}")
    browser.wait_url(login_url(stack, MFA_APP))
    browser.wait_for("#username")
    assert focused(browser).get_attribute("id") == "username"
    press(browser, user, Keys.TAB, PASSWORD, Keys.ENTER)
    browser.wait_url(f"{stack.portal}/login/next?rd=")

    # The factor page: Tab to the security-key button, Enter.
    browser.wait_for("#webauthn-login")
    tab_to(browser, "webauthn-login")
    press(browser, Keys.ENTER)
    assert arrive(browser, stack, MFA_APP)["Remote-User"] == user
    sign_out(browser, stack)

    # And the authenticator-app form, keyboard only: Tab to the field, type, Enter.
    browser.open(f"{stack.app}{MFA_APP}")
    browser.wait_for("#username")
    press(browser, user, Keys.TAB, PASSWORD, Keys.ENTER)
    browser.wait_for("#webauthn-login")
    tab_to(browser, "code")
    press(browser, totp_now(secret, offset_steps=1), Keys.ENTER)
    assert arrive(browser, stack, MFA_APP)["Remote-User"] == user
