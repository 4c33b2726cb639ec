"""Issue 17 item 5 walked in Chromium through nginx: a user who needs a security key for an
app and has none is told exactly what to do, and can do it there.

* ``wren`` is at ``mfa`` (password + authenticator app) in the session where the service
  desk's enrolment code was redeemed, so the enrolment rule (``credentials.enrolment.
  may_enrol``) lets them add a key: the page says "Add a security key now", the key is
  registered with Chromium's virtual authenticator, proven, and the app opens.
* ``vita`` is at ``mfa`` in a later session (no code window): the page says how to get a
  code; the enrolment page takes it (a typo first, its error tied to the field), the key is
  registered and proven, and the app opens.

* ``yves`` opens the strong app after the password alone (no factor proven in this
  session). "Add a security key" used to bounce between ``/enrol``, ``/login`` and
  ``/login/next`` (Chromium: too many redirects); now the factor page asks to confirm with
  the device he has, then the enrolment page takes the service desk's code.

Every authgate page on the way: a screenshot and the axe-core check (``journeys-key-*``),
and a visible, enabled control that leads on.
"""
from __future__ import annotations

import pytest

from tests.browser.axe import check_page
from tests.browser.conftest import Page, Stack, add_people, totp_now
from tests.browser.consoles_helpers import settle
from tests.browser.test_axe_every_page import refused_field
from tests.browser.test_webauthn_flow import (
    MFA_APP,
    STRONG_APP,
    arrive,
    login_url,
    sign_out,
)

pytestmark = pytest.mark.integration

PEOPLE = {"wren": ("Wren Staff", ["City-Staff"]), "vita": ("Vita Staff", ["City-Staff"]),
          "yves": ("Yves Staff", ["City-Staff"])}


@pytest.fixture(scope="module")
def people(stack: Stack) -> Stack:
    return add_people(stack, PEOPLE)


def page_check(page: Page, name: str) -> None:
    """A screenshot and zero serious axe violations (``journeys-NAME``)."""
    check_page(page, f"journeys-{name}")


def leads_on(page: Page, css: str) -> None:
    """The page's way forward: a visible, enabled control that goes somewhere."""
    control = page.find(css)
    assert control.is_displayed() and control.is_enabled(), (css, page.url)
    if control.tag_name == "a":
        href = control.get_attribute("href") or ""
        assert href.startswith("http") and not href.endswith("#"), (css, href)


def first_device_totp(page: Page, stack: Stack, user: str, path: str, *,
                      name: str) -> str:
    """Password, the service desk's code, an authenticator app, recovery codes; stops on
    the factor page that asks to prove the new app. Returns the app's secret."""
    page.open(f"{stack.app}{path}")
    page.wait_url(login_url(stack, path))
    page.sign_in(user)
    page.wait_url(f"{stack.portal}/enrol?rd=")
    page.fill("#code", stack.issue_code(user))
    page.click("form button[type=submit]")
    page.wait_for("#app-name")
    page.click("form[action$='/enrol/totp/start'] button[type=submit]")
    secret = str(page.wait_for("#totp-secret").text.replace(" ", "").strip())
    page.fill("#code", totp_now(secret))
    page.find("#code").submit()
    page.wait_url(f"{stack.portal}/enrol/finish")
    page.click("#create-codes")
    page.wait_for("#recovery-codes")
    page_check(page, f"{name}-recovery-codes")
    leads_on(page, "#codes-saved")
    page.click("#codes-saved")
    page.wait_url(f"{stack.portal}/login/next?rd=")
    page.wait_for("#code")
    return secret


def prove_totp(page: Page, secret: str, *, steps: int = 1) -> None:
    page.fill("#code", totp_now(secret, offset_steps=steps))
    page.find("#code").submit()


def register_and_prove_key(page: Page, stack: Stack, name: str) -> None:
    """On the choose page: register the virtual authenticator's key; go on past the device
    page; prove the key on the step-up page; arrive at the strong app."""
    page.wait_for("#webauthn-register")
    page_check(page, f"{name}-choose")
    leads_on(page, "#webauthn-register")
    page.fill("#key-name", "Laptop passkey")
    page.click("#webauthn-register")
    page.wait_url(f"{stack.portal}/enrol/finish")
    page.wait_text("Your sign-in device is ready")
    page_check(page, f"{name}-key-ready")
    # The codes made with the app stay: going on is the primary step, and replacing the
    # codes (which would stop the ones kept) a secondary one.
    leads_on(page, "#skip-codes")
    assert "secondary" not in (page.find("#skip-codes").get_attribute("class") or "")
    assert "secondary" in (page.find("#create-codes").get_attribute("class") or "")
    page.click("#skip-codes")
    page.wait_url(f"{stack.portal}/login/next?rd=")
    page.wait_for("#webauthn-login")
    assert "needs your security key" in page.text()
    page_check(page, f"{name}-prove-key")
    page.click("#webauthn-login")
    assert arrive(page, stack, STRONG_APP)["Remote-User"] in PEOPLE
    assert stack.verify(STRONG_APP, page.cookies()).status_code == 200


def test_a_user_who_may_add_a_key_adds_one_there_and_reaches_the_app(
        people: Stack, browser: Page) -> None:
    stack, page, user = people, browser, "wren"
    settle(page)
    secret = first_device_totp(page, stack, user, MFA_APP, name="key-wren")
    prove_totp(page, secret)
    arrive(page, stack, MFA_APP)
    # The strong app: a step-up the user cannot do yet, but may (the code's window is open).
    page.open(f"{stack.app}{STRONG_APP}")
    page.wait_url(f"{stack.portal}/login/next?rd=")
    page.wait_for("#no-key")
    notice = " ".join(page.find("#no-key").text.split())
    assert "You can add one now" in notice and "service desk" not in notice, notice
    assert page.find("#add-key").text.strip() == "Add a security key now"
    page_check(page, "key-wren-add-now")
    leads_on(page, "#add-key")
    page.click("#add-key")
    page.wait_url(f"{stack.portal}/enrol?rd=")
    register_and_prove_key(page, stack, "key-wren")
    assert [r["reason"] for r in stack.audit(
        "event = 'factor.added' AND username = ?", (user,))] == ["totp", "webauthn"]


def test_a_user_who_needs_a_code_is_told_how_and_adds_the_key_with_it(
        people: Stack, browser: Page) -> None:
    stack, page, user = people, browser, "vita"
    settle(page)
    secret = first_device_totp(page, stack, user, MFA_APP, name="key-vita")
    sign_out(page, stack)  # a later day: the code's window went with that session
    page.open(f"{stack.app}{MFA_APP}")
    page.wait_url(login_url(stack, MFA_APP))
    page.sign_in(user)
    page.wait_for("#code")
    prove_totp(page, secret)
    arrive(page, stack, MFA_APP)
    page.open(f"{stack.app}{STRONG_APP}")
    page.wait_url(f"{stack.portal}/login/next?rd=")
    page.wait_for("#no-key")
    notice = " ".join(page.find("#no-key").text.split())
    assert "ask the IT service desk for an enrolment code" in notice, notice
    assert "Add a security key now" not in page.text()
    page_check(page, "key-vita-needs-code")
    leads_on(page, "#add-key")
    page.click("#add-key")
    page.wait_url(f"{stack.portal}/enrol?rd=")
    page.wait_for("#key-needs-code")
    page_check(page, "key-vita-choose-code")
    page.fill("#code", "abcd-efgh-jkmn-pqrs")  # a typo: the error is tied to the field
    page.click("#key-needs-code + form button[type=submit]")
    page.wait_for(".alert")
    refused_field(page, "#code")
    page_check(page, "key-vita-code-refused")
    assert "To add a security key" in page.text()  # not "needs a second device"
    page.fill("#code", stack.issue_code(user))
    page.find("#code").submit()
    page.wait_url(f"{stack.portal}/enrol?rd=")
    register_and_prove_key(page, stack, "key-vita")


def test_adding_a_key_without_a_fresh_login_asks_for_the_device_then_the_code(
        people: Stack, browser: Page) -> None:
    stack, page, user = people, browser, "yves"
    settle(page)
    secret = first_device_totp(page, stack, user, MFA_APP, name="key-yves")
    sign_out(page, stack)
    page.open(f"{stack.app}{STRONG_APP}")
    page.wait_url(login_url(stack, STRONG_APP))
    page.sign_in(user)
    page.wait_url(f"{stack.portal}/login/next?rd=")
    page.wait_for("#no-key")
    leads_on(page, "#add-key")
    page.click("#add-key")
    page.wait_for("#fresh-needed")  # not a redirect loop: one page that asks for the app
    assert "fresh=1" in page.url
    page_check(page, "key-yves-confirm-first")
    leads_on(page, "form[action$='/login/totp'] button[type=submit]")
    prove_totp(page, secret)
    page.wait_url(f"{stack.portal}/enrol?rd=")
    page.wait_for("#key-needs-code")
    page_check(page, "key-yves-choose-code")
    page.fill("#code", stack.issue_code(user))
    page.find("#code").submit()
    page.wait_url(f"{stack.portal}/enrol?rd=")
    register_and_prove_key(page, stack, "key-yves")
