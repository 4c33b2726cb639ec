"""The auditor's journeys in Chromium through nginx (issue 17 items 1, 9, 10).

* a staff member signs in to the sample app (one wrong password first) and the browser
  fetches ``/favicon.ico`` and ``/robots.txt``;
* the auditor opens that person's timeline: today's records, in the policy's time zone with
  UTC on hover; submitting the pre-filled form again finds the same records (the review's
  "Nothing recorded" after a re-submit); browser-file requests are hidden behind a visible
  "Show all requests" toggle; reversed dates are refused on the page, not with a dead end;
* the search at 1280x800: labels with codes on hover, an event select, and the last column
  inside the viewport;
* an admin sees the policy's sources relative to the policy directory.

Screenshots ``40-audit-*.png`` go to ``test-artifacts/screenshots/``.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from selenium.webdriver.support.ui import Select

from tests.browser.conftest import FAST_HASHER, PASSWORD, Page, Stack
from tests.browser.consoles_helpers import chromium, enrol_first_key
from tests.browser.test_pages_a11y import audit_page, csp_refusals

SUBJECT = "yusuf"     # City-Staff: the person whose history is read
AUDITOR = "ulrike"    # authgate-auditors: her own account, so no other test's key matters
ADMIN = "odile"       # authgate-admins: the policy page
PEOPLE = {SUBJECT: ["City-Staff"], AUDITOR: ["authgate-auditors", "City-Staff"],
          ADMIN: ["authgate-admins"]}
LAST_EDGE = """
const cell = document.querySelector('#audit-results thead th:last-child');
const box = cell.getBoundingClientRect();
const card = cell.closest('.card');
const form = document.querySelector('form.audit-search').closest('.card');
const fields = [...document.querySelectorAll('form.audit-search input, form.audit-search select')];
return {right: box.right, viewport: document.documentElement.clientWidth,
        inner: window.innerWidth, cardScroll: card.scrollWidth - card.clientWidth,
        formScroll: form.scrollWidth - form.clientWidth,
        fieldRight: Math.max(...fields.map(f => f.getBoundingClientRect().right)),
        formRight: form.getBoundingClientRect().right};
"""


def _add_people(stack: Stack) -> None:
    from authgate.directory.file import FileDirectory

    directory = FileDirectory(stack.run_dir / "users.yaml", hasher=FAST_HASHER)
    for name, groups in PEOPLE.items():
        if directory.lookup(name) is None:
            directory.add_user(name, PASSWORD, display_name=f"{name.title()} Example",
                               email=f"{name}@city.test", groups=groups)


def _today(stack: Stack) -> str:
    zone = stack.services.policies.current.settings.defaults.tz
    return datetime.now(ZoneInfo(zone)).date().isoformat()


def _subject_visits_the_app(stack: Stack) -> None:
    with chromium(stack) as staff:
        staff.open(f"{stack.app}/")
        staff.wait_url(f"{stack.portal}/login?rd=")
        staff.sign_in(SUBJECT, "not the password")
        staff.wait_for("[role=alert]")
        staff.sign_in(SUBJECT)
        staff.wait.until(lambda d: d.current_url.startswith(f"{stack.app}/")
                         or staff.has("main a.button"), "stuck after sign-in")
        if not staff.url.startswith(f"{stack.app}/"):  # a recent-failures notice, if any
            staff.click("main a.button")
            staff.wait_url(f"{stack.app}/")
        for noise in ("/favicon.ico", "/robots.txt"):
            staff.open(f"{stack.app}{noise}")
    assert stack.audit("event = 'verify' AND username = ? AND path = '/favicon.ico'",
                       (SUBJECT,))


def _rows(page: Page) -> list[Any]:
    return list(page.driver.find_elements("css selector", "table.timeline tbody tr"))


def _timeline(auditor: Page, stack: Stack, seen: dict[str, Any]) -> None:
    today = _today(stack)
    auditor.wait_for("table.timeline")
    assert auditor.find("#until").get_attribute("value") == today
    first = [r.text for r in _rows(auditor)]
    assert first and "Nothing recorded" not in auditor.text()
    assert "favicon" not in " ".join(first) and auditor.has("#show-all")
    stamp = auditor.find("table.timeline time")
    assert stamp.get_attribute("datetime").endswith("Z")
    assert stamp.get_attribute("title").endswith(" UTC")
    audit_page(auditor, stack, seen)
    auditor.screenshot("40-audit-timeline")

    # The review's bug: submit the pre-filled form unchanged.
    auditor.click("form.audit-search button[type=submit]")
    auditor.wait_url(f"{stack.portal}/audit/timeline?user={SUBJECT}&since=")
    auditor.wait_for("table.timeline")
    assert "Nothing recorded" not in auditor.text()
    assert [r.text for r in _rows(auditor)] == first
    assert auditor.find("#until").get_attribute("value") == today
    auditor.screenshot("40-audit-timeline-resubmitted")

    auditor.click("#show-all")
    auditor.wait_text("Showing all requests")
    assert "/favicon.ico" in auditor.text() and "/robots.txt" in auditor.text()
    audit_page(auditor, stack, seen)
    auditor.screenshot("40-audit-timeline-all-requests")

    # Error path: dates the wrong way round keep the form and say why.
    auditor.driver.execute_script(
        "document.getElementById('since').value = arguments[0];"
        "document.getElementById('until').value = '2020-01-01';", today)
    auditor.click("form.audit-search button[type=submit]")
    auditor.wait_for("#dates-error")
    assert auditor.find("#since").get_attribute("aria-invalid") == "true"
    assert auditor.has("nav[aria-label=Audit] a")  # a way forward
    audit_page(auditor, stack, seen)
    auditor.screenshot("40-audit-timeline-bad-dates")


def _search_at_1280(auditor: Page, stack: Stack, seen: dict[str, Any]) -> None:
    auditor.driver.set_window_size(1280, 800)
    auditor.open(f"{stack.portal}/audit/?user={SUBJECT}")
    auditor.wait_for("#audit-results")
    Select(auditor.find("#event")).select_by_visible_text("Password")
    auditor.click("form.audit-search button[type=submit]")
    auditor.wait_url(f"{stack.portal}/audit/?user={SUBJECT}")
    auditor.wait_for("#audit-results")
    assert "event=login.password" in auditor.url
    labels = auditor.driver.find_elements("css selector", "#audit-results td span.code")
    assert {e.get_attribute("data-code") for e in labels} >= {"login.password",
                                                              "invalid_credentials"}
    assert any(e.text == "Wrong username or password" for e in labels)
    edge = auditor.driver.execute_script(LAST_EDGE)
    assert edge["right"] <= edge["viewport"] and edge["cardScroll"] <= 0, edge
    assert edge["formScroll"] <= 0 and edge["fieldRight"] <= edge["formRight"], edge
    audit_page(auditor, stack, seen)
    auditor.screenshot("40-audit-search-1280")

    auditor.open(f"{stack.portal}/audit/?user={SUBJECT}")
    auditor.wait_for("#audit-results")
    edge = auditor.driver.execute_script(LAST_EDGE)
    assert edge["right"] <= edge["viewport"] and edge["cardScroll"] <= 0, edge
    auditor.screenshot("40-audit-search-all-events-1280")

    auditor.click("nav[aria-label=Audit] a[href$='/audit/summary']")
    auditor.wait_for("#summary-sources")
    last = auditor.find("#summary-sources time")  # yusuf's wrong password, from ::1
    assert last.get_attribute("datetime").endswith("Z")
    assert last.get_attribute("title").endswith(" UTC")
    audit_page(auditor, stack, seen)
    auditor.screenshot("40-audit-summary")


def test_auditor_reads_a_timeline_resubmits_it_and_searches_at_1280(stack: Stack) -> None:
    _add_people(stack)
    _subject_visits_the_app(stack)
    seen: dict[str, Any] = {}
    with chromium(stack) as auditor:
        enrol_first_key(auditor, stack, AUDITOR,
                        f"{stack.portal}/audit/timeline?user={SUBJECT}")
        auditor.wait_url(f"{stack.portal}/audit/timeline?user={SUBJECT}")
        _timeline(auditor, stack, seen)
        _search_at_1280(auditor, stack, seen)
        assert csp_refusals(auditor) == []


def test_admin_sees_policy_sources_relative_to_the_policy_directory(stack: Stack) -> None:
    _add_people(stack)
    with chromium(stack) as admin:
        enrol_first_key(admin, stack, ADMIN, f"{stack.portal}/admin/policy")
        admin.wait_url(f"{stack.portal}/admin/policy")
        admin.wait_for("table")
        text = admin.text()
        assert str(stack.services.policies.directory) not in text
        sources = [td.text for td in admin.driver.find_elements(
            "css selector", "table tbody td:last-child")]
        assert sources and all(s.split(":")[0].endswith(".yaml") and "/" not in s
                               for s in sources), sources
        admin.screenshot("40-admin-policy-relative-paths")
