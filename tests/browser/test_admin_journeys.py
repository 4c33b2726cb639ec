"""Issue 17 items 3 and 8 in a real browser, through nginx: the refusal page, and the admin
console for someone who does not know the exact username.

Screenshots ``17-*.png`` go to ``test-artifacts/screenshots/`` (one per page walked).
"""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser.conftest import Page, Stack, add_people
from tests.browser.consoles_helpers import accept_confirm, detail, enrol_first_key, settle
from tests.browser.test_pages_a11y import csp_refusals
from tests.integration.harness import Browser

pytestmark = pytest.mark.integration

JOURNEY_ADMIN = "ada"          # authgate-admins, only in these journeys
REFUSED = "rita"               # City-Staff, refused the forbidden path
BANNED = "tomek"               # City-Staff, two wrong passwords make a ban
NAMESAKE = "tomasina"          # City-Staff: "tom" finds both
PEOPLE = {JOURNEY_ADMIN: ("Ada Journeys", ["authgate-admins"]),
          REFUSED: ("Rita Refused", ["City-Staff"]),
          BANNED: ("Tomek Banned", ["City-Staff"]),
          NAMESAKE: ("Tomasina Namesake", ["City-Staff"])}


@pytest.fixture(scope="module")
def people(stack: Stack) -> Stack:
    return add_people(stack, PEOPLE)


def test_refused_staff_see_who_they_are_and_how_to_switch(people: Stack, browser: Page) -> None:
    stack = people
    # Not signed in: the refusal page offers sign-in (the error path: no session at all).
    browser.open(f"{stack.app}/forbidden/")
    browser.wait_text("You do not have access to this page")
    assert "not signed in" in browser.text() and browser.has(f"a[href='{stack.portal}/login']")
    browser.screenshot("17-forbidden-anonymous")

    # Signed in as staff: the page names the account, gives the request id and a way out.
    browser.open(f"{stack.app}/some/page")
    browser.wait_url(f"{stack.portal}/login?rd=")
    browser.sign_in(REFUSED)
    browser.wait_url(f"{stack.app}/some/page")
    browser.open(f"{stack.app}/forbidden/secret")
    browser.wait_text("Rita Refused")
    rid = browser.find("#request-id").text.strip()
    [record] = stack.audit("request_id = ? AND event = 'verify'", (rid,))
    assert record["outcome"] == "deny" and record["username"] == REFUSED
    assert csp_refusals(browser) == []  # the portal's stylesheet loaded on the app's host
    assert browser.driver.execute_script(
        "return getComputedStyle(document.querySelector('header.bar')).display") != "inline"
    browser.screenshot("17-forbidden-signed-in")

    # "Sign out or switch account" leads to the portal's sign-out, then to sign in again.
    browser.click(f"a[href='{stack.portal}/logout']")
    browser.wait_url(f"{stack.portal}/logout")
    browser.screenshot("17-forbidden-sign-out")
    browser.click("form button[type=submit]")
    browser.wait_text("signed out")
    browser.screenshot("17-forbidden-signed-out")
    assert stack.through_nginx("/some/page", browser.cookies()).status_code == 302


def _two_wrong_passwords(stack: Stack, username: str) -> None:
    """A second person mistypes twice, two different passwords (a repeated wrong password is
    counted once): the per-user limit (2) bans the account here."""
    other = Browser(Path(stack.config))
    try:
        for attempt in range(2):
            answer = other.login(f"{stack.portal}/login", username, f"not-the-password-{attempt}")
            assert "incorrect" in answer.text, (answer.status_code, answer.text[:800])
    finally:
        other.close()


def test_admin_finds_people_by_name_lifts_a_ban_and_ends_all_on_its_own_page(
        people: Stack, browser: Page) -> None:
    stack = people
    admin = browser
    settle(admin)
    enrol_first_key(admin, stack, JOURNEY_ADMIN, f"{stack.portal}/admin")
    admin.wait_url(f"{stack.portal}/admin")
    admin.wait_text("Find a user")
    assert "END ALL SESSIONS" not in admin.text()
    admin.screenshot("17-admin-home")

    # A prefix lists everyone it fits; a part of the display name finds the person too.
    admin.fill("#q", "tom")
    admin.click("form[role=search] button[type=submit]")
    admin.wait_text("matching")
    assert admin.has(f"a[href='/admin/users/{BANNED}']")
    assert admin.has(f"a[href='/admin/users/{NAMESAKE}']")
    admin.screenshot("17-admin-search-prefix")
    admin.fill("#q", "namesake")
    admin.click("form[role=search] button[type=submit]")
    admin.wait_text("Tomasina Namesake")
    # The error path: nothing matches, and the page says what to try instead.
    admin.fill("#q", "nobody-at-all")
    admin.click("form[role=search] button[type=submit]")
    admin.wait_text("No account matches")
    admin.screenshot("17-admin-search-none")

    # A person with no device: nothing to reset, so no "Reset all factors".
    admin.open(f"{stack.portal}/admin/users?q=tom")
    admin.wait_text("matching")
    admin.click(f"a[href='/admin/users/{BANNED}']")
    admin.wait_text("Tomek Banned")
    assert "No devices" in admin.text() and not admin.has("#reason-reset")
    assert "not banned" in admin.text()

    # Two wrong passwords elsewhere ban tomek; the console says so in words.
    _two_wrong_passwords(stack, BANNED)
    admin.open(f"{stack.portal}/admin/users/{BANNED}")
    admin.wait_text("too many failed passwords")
    assert "Toronto time" in admin.text()
    admin.screenshot("17-admin-user-banned")
    admin.open(f"{stack.portal}/admin/bans")
    row = admin.find(f"form input[name=target][value='{BANNED}']")
    # 127.0.0.1 is no familiar address of tomek's, so the ban is on the account itself
    sentence = row.find_element("xpath", "./ancestor::tr/td[@class='ban']").text
    assert sentence.startswith(f"{BANNED} (from any address), too many failed passwords, until ")
    assert sentence.endswith("Toronto time"), sentence
    admin.screenshot("17-admin-bans")
    form = row.find_element("xpath", "./ancestor::form")
    form.find_element("css selector", "input[name=reason]").send_keys("called the desk, ID ok")
    form.find_element("css selector", "button[type=submit]").click()
    accept_confirm(admin, f"Lift the ban on {BANNED}?")
    admin.wait_text("ban(s) lifted.")
    assert not admin.has(f"form input[name=target][value='{BANNED}']")
    admin.screenshot("17-admin-ban-lifted")
    [lift] = stack.audit("event = 'ban.lift' AND username = ?", (BANNED,))
    assert detail(lift)["actor"] == JOURNEY_ADMIN and "ID ok" in detail(lift)["why"]

    # "Suspected compromise" is its own page; a wrong confirmation ends nothing.
    admin.open(f"{stack.portal}/admin")
    admin.click("a[href='/admin/sessions/end-all']")
    admin.wait_text("Type END ALL SESSIONS to confirm")
    admin.screenshot("17-admin-end-all")
    admin.fill("#reason-all", "drill: checking the page only")
    admin.fill("#confirm-all", "end all")
    admin.click("form[action$='/sessions/end-all'] button[type=submit]")
    accept_confirm(admin, "End every session of every user now?")
    admin.wait_text("Type END ALL SESSIONS to confirm.")
    assert admin.find("#confirm-all").get_attribute("aria-invalid") == "true"
    admin.screenshot("17-admin-end-all-refused")
    assert stack.audit("event = 'admin.all_sessions_ended'") == []
    admin.click("main a[href='/admin']")
    admin.wait_text("Find a user")
