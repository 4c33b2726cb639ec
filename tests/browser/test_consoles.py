"""The admin console and the auditor console in a real browser (issue 8, "How it is judged";
issue 5 item 5, the auditor page).

Headless Chromium through nginx and the portal at ``http://localhost:PORTAL``:

* an admin (security key in a virtual authenticator) issues an enrolment code in the admin
  console; the user enrols with it in a second browser profile and reaches an app; the admin
  resets the user's factors with a reason and the user's session dies;
* an auditor (key, the console asks for mfa) finds those events by user, and downloads them
  as CSV and JSON lines, which verify offline;
* roles are kept apart: staff without a role, the auditor on the admin console and the admin
  on the audit console all get 403;
* an admin whose session holds only an authenticator app (mfa) is asked for the key.

Screenshots ``20-admin-*.png`` and ``30-audit-*.png`` go to ``test-artifacts/screenshots/``.
"""
from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select

from tests.browser.conftest import ADMIN, Page, Stack, totp_now
from tests.browser.consoles_helpers import (
    AUDITOR,
    MFA_ADMIN,
    NO_ROLE,
    TARGET,
    accept_confirm,
    add_people,
    chromium,
    continue_after_key,
    detail,
    enrol_first_key,
    fetch,
    settle,
    wait_download,
)
from tests.browser.test_pages_a11y import audit_page, csp_refusals, focused, press, tab_to
from tests.browser.test_webauthn_flow import (
    MFA_APP,
    STRONG_APP,
    arrive,
    enrol_code_page,
    login_url,
    password_step,
    session_cookie,
    setup_totp,
    sign_out,
    use_key,
)

pytestmark = pytest.mark.integration

RESET_REASON = "lost phone, identity checked in person (ticket 4711)"
ADMIN_EVENTS = ("enrol.code_issued", "enrol.code_revoked", "admin.factors_reset",
                "admin.sessions_ended")


@pytest.fixture(scope="module")
def people(stack: Stack) -> Stack:
    add_people(stack)
    return stack


def forbidden(page: Page, url: str) -> None:
    """A console refused: the 403 page, no console content."""
    page.open(url)
    page.wait_for("h1")
    assert page.driver.title.startswith("Not allowed"), (url, page.driver.title)
    assert "Your account does not have access to this page." in page.text()
    assert not page.has("#q") and not page.has("#audit-results") and not page.has("#user")
    status = fetch(page, url)["status"]
    assert status == 403, (url, status)


def refusals(stack: Stack, user: str) -> list[str]:
    return [f"{r['path']} {r['reason']}" for r in stack.audit(
        "event = 'console.access' AND outcome = 'deny' AND username = ?", (user,))]


# -- the judged flow ----------------------------------------------------------------------
def test_admin_issues_code_user_enrols_admin_resets_and_auditor_downloads(
        people: Stack, browser: Page, tmp_path: Path) -> None:
    stack = people
    admin = browser
    settle(admin)
    seen: dict[str, int] = {}

    # The admin signs in with a security key (first enrolled with an in-process code).
    enrol_first_key(admin, stack, ADMIN, f"{stack.portal}/admin")
    admin.wait_url(f"{stack.portal}/admin")
    admin.wait_text("Find a user")
    audit_page(admin, stack, seen)
    admin.screenshot("20-admin-home")

    # Keyboard only: Tab to the find-user field, type, Enter.
    admin.driver.execute_script("document.activeElement.blur()")
    tab_to(admin, "q")
    press(admin, TARGET, Keys.ENTER)
    # the only match opens directly; a namesake (test_admin_journeys adds "tomasina" to the
    # shared directory) lists both: then the exact one is a link in the list
    admin.wait.until(lambda d: "/admin/users/" in d.current_url or "matching" in d.page_source)
    if f"/admin/users/{TARGET}" not in admin.driver.current_url:
        admin.click(f"a[href$='/admin/users/{TARGET}']")
    admin.wait_url(f"{stack.portal}/admin/users/{TARGET}")
    admin.wait_text("Tomas Target")
    assert "No devices" in admin.text()
    audit_page(admin, stack, seen)

    # An enrolment code, valid for an hour, shown once.
    Select(admin.find("#ttl")).select_by_value("1h")
    admin.fill("#reason-code", "new starter, photo ID checked at the desk")
    admin.click("form[action$='/codes'] button[type=submit]")
    code = str(admin.wait_for("#enrolment-code").text.strip())
    assert "Shown once" in " ".join(admin.text().split())
    audit_page(admin, stack, seen)
    admin.screenshot("20-admin-code")
    [issued] = stack.audit("event = 'enrol.code_issued' AND username = ?", (TARGET,))
    assert issued["outcome"] == "success" and detail(issued)["actor"] == ADMIN
    assert "photo ID checked" in detail(issued)["why"]
    assert code not in json.dumps(dict(issued))  # never the code itself

    # The user, in another browser profile, enrols a key with that code and opens the app.
    with chromium(stack) as user:
        user.open(f"{stack.app}{MFA_APP}")
        user.wait_url(login_url(stack, MFA_APP))
        user.sign_in(TARGET)
        user.wait_url(f"{stack.portal}/enrol?rd=")
        user.fill("#code", code)
        user.click("form button[type=submit]")
        continue_after_key(user, stack)
        assert arrive(user, stack, MFA_APP)["Remote-User"] == TARGET
        cookies = user.cookies()
        assert stack.verify(MFA_APP, cookies).status_code == 200

        # The admin sees the device, the used code, the session and the sign-ins.
        admin.open(f"{stack.portal}/admin/users/{TARGET}")
        admin.wait_for("#reason-reset")
        text = admin.text()
        assert "security key" in text and "used" in text and "No active sessions" not in text
        assert "Password" in text and "Device added" in text
        admin.screenshot("20-admin-user")

        # A second code, revoked at once (each change is an audit record).
        admin.fill("#reason-code", "second code for a test of revocation")
        admin.click("form[action$='/codes'] button[type=submit]")
        admin.wait_for("#enrolment-code")
        admin.open(f"{stack.portal}/admin/users/{TARGET}")
        admin.fill("form[action*='/revoke'] input[name=reason]", "issued by mistake")
        admin.click("form[action*='/revoke'] button[type=submit]")
        admin.wait_text("Enrolment code revoked.")

        # Reset all factors, with a reason and the confirmation dialog.
        admin.fill("#reason-reset", RESET_REASON)
        admin.click("form[action$='/factors/reset'] button[type=submit]")
        accept_confirm(admin, f"Remove ALL of {TARGET}'s devices")
        admin.wait_text("All factors removed")
        assert "No devices" in admin.text() and "No active sessions" in admin.text()
        admin.screenshot("20-admin-user-after-reset")

        # The user's session is dead: /verify refuses the old cookie, the app sends to login.
        assert stack.verify(MFA_APP, cookies).status_code == 401
        user.open(f"{stack.app}{MFA_APP}")
        user.wait_url(login_url(stack, MFA_APP))
        assert user.has("#username")

        # Back at password level (the default app needs no more), the admin ends that
        # session too, with a reason.
        user.sign_in(TARGET)
        user.wait_url(f"{stack.portal}/enrol?rd=")  # no factor any more: a new code needed
        user.open(f"{stack.app}/whoami.json")
        assert arrive(user, stack, "/whoami.json")["Remote-User"] == TARGET
        admin.open(f"{stack.portal}/admin/users/{TARGET}")
        admin.fill("#reason-sessions", "account under review after the reset")
        admin.click("form[action$='/sessions/end'] button[type=submit]")
        accept_confirm(admin, f"End all of {TARGET}'s sessions?")
        admin.wait_text("1 session(s) ended.")
        assert stack.verify("/whoami.json", user.cookies()).status_code == 401

    # Every admin action names the admin, the target and the reason.
    [reset] = stack.audit("event = 'admin.factors_reset' AND username = ?", (TARGET,))
    assert detail(reset)["actor"] == ADMIN and detail(reset)["why"] == RESET_REASON
    assert detail(reset)["sessions_ended"] == "1"
    [ended] = stack.audit("event = 'admin.sessions_ended' AND username = ?", (TARGET,))
    assert detail(ended)["actor"] == ADMIN and "under review" in detail(ended)["why"]
    [revoked] = stack.audit("event = 'enrol.code_revoked' AND username = ?", (TARGET,))
    assert revoked["outcome"] == "success" and detail(revoked)["actor"] == ADMIN
    for row in (reset, ended, revoked):
        assert row["client_ip"] in ("127.0.0.1", "::1") and row["request_id"]

    # The other admin pages, each with a screenshot.
    for page, title, shot in (("bans", "Bans", "20-admin-bans"),
                              ("policy", "Policy in force", "20-admin-policy"),
                              ("health", "Health", "20-admin-health")):
        admin.open(f"{stack.portal}/admin/{page}")
        admin.wait_text(title)
        audit_page(admin, stack, seen)
        admin.screenshot(shot)
    admin.open(f"{stack.portal}/admin/policy")
    assert "demo-admin-console" in admin.text()
    admin.open(f"{stack.portal}/admin/health")
    assert "Storage" in admin.text() and "Directory" in admin.text()

    # Lifting a ban (none is active for the user: nothing lifted, still on record).
    admin.open(f"{stack.portal}/admin/bans")
    admin.fill("#target", TARGET)
    admin.fill("#reason", "user called the service desk, identity checked")
    admin.click("form[action$='/bans/lift'] button[type=submit]")
    accept_confirm(admin, "Lift this ban?")
    admin.wait_text("0 ban(s) lifted.")
    [lift] = [r for r in stack.audit("event = 'ban.lift'")  # admin journeys lift too
              if r["username"] == TARGET]
    assert detail(lift)["actor"] == ADMIN
    assert lift["request_id"] and lift["client_ip"] not in ("", "cli")
    assert "identity checked" in detail(lift)["why"]

    # Separation of duties: the admin may not read the audit trail.
    forbidden(admin, f"{stack.portal}/audit/")
    assert csp_refusals(admin) == []

    # The auditor finds those events by user and downloads them.
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    with chromium(stack, downloads) as auditor:
        enrol_first_key(auditor, stack, AUDITOR, f"{stack.portal}/audit/")
        auditor.wait_url(f"{stack.portal}/audit/")
        auditor.wait_for("#user")
        audit_page(auditor, stack, seen)

        # Empty state.
        auditor.fill("#user", "nobody-by-this-name")
        auditor.find("#user").submit()
        auditor.wait_text("No records match.")
        assert not auditor.has("#audit-results")
        audit_page(auditor, stack, seen)
        auditor.screenshot("30-audit-empty")

        # Keyboard only: Tab to the user field, type, Enter.
        auditor.open(f"{stack.portal}/audit/")
        auditor.wait_for("#user")
        auditor.driver.execute_script("document.activeElement.blur()")
        tab_to(auditor, "user", limit=25)
        press(auditor, TARGET, Keys.ENTER)
        auditor.wait_for("#audit-results")
        assert f"user={TARGET}" in auditor.url
        events = [e.get_attribute("data-code") for e in auditor.driver.find_elements(
            "css selector", "#audit-results tbody td:nth-child(3) span.code")]  # label, code
        for wanted in (*ADMIN_EVENTS, "enrol.code_redeemed", "factor.added"):
            assert wanted in events, (wanted, events)
        assert {td.text for td in auditor.driver.find_elements(
            "css selector", "#audit-results tbody td:nth-child(6)")} == {TARGET}
        audit_page(auditor, stack, seen)
        auditor.screenshot("30-audit-results")

        # One event: narrowed by event and outcome.
        auditor.open(f"{stack.portal}/audit/?user={TARGET}&event=admin.factors_reset"
                     "&outcome=success")
        rows = auditor.driver.find_elements("css selector", "#audit-results tbody tr")
        assert len(rows) == 1 and rows[0].find_element(
            "css selector", "td:nth-child(3) span.code").get_attribute(
            "title") == "admin.factors_reset"

        # Downloads of the user's records, as the page offers them.
        auditor.open(f"{stack.portal}/audit/?user={TARGET}")
        auditor.click("#download-csv")
        exported_csv = wait_download(downloads, ".csv")
        auditor.click("#download-jsonl")
        exported_jsonl = wait_download(downloads, ".jsonl")

        # The same, fetched with the auditor's cookies: headers of a download.
        got = fetch(auditor, f"{stack.portal}/audit/export.csv?user={TARGET}")
        assert got["status"] == 200 and got["type"].startswith("text/csv")
        assert got["disposition"].startswith("attachment; filename=\"authgate-audit-")

        # The auditor may not use the admin console.
        forbidden(auditor, f"{stack.portal}/admin")
        forbidden(auditor, f"{stack.portal}/admin/users/{TARGET}")
        assert csp_refusals(auditor) == []

    table = list(csv.DictReader(io.StringIO(exported_csv.read_text(encoding="utf-8"))))
    records = [r for r in table if not r["id"].startswith("#")]
    assert {r["username"] for r in records} == {TARGET}
    csv_events = {r["event"] for r in records}
    assert set(ADMIN_EVENTS) <= csv_events, csv_events
    [csv_reset] = [r for r in records if r["event"] == "admin.factors_reset"]
    assert RESET_REASON in csv_reset["detail"] and ADMIN in csv_reset["detail"]
    lines = [json.loads(x) for x in exported_jsonl.read_text(encoding="utf-8").splitlines()]
    manifest = lines[-1]["manifest"]
    assert manifest["count"] == len(lines) - 1 == len(records)
    assert manifest["filter"].get("username") == TARGET, manifest["filter"]
    assert {x["event"] for x in lines[:-1]} == csv_events
    for exported in (exported_csv, exported_jsonl):
        done = subprocess.run([str(Path(sys.executable).parent / "authgate"), "audit", "verify",
                               "--export", str(exported)], capture_output=True, text=True,
                              timeout=30, env={"AUTHGATE_CONFIG": str(stack.config),
                                               "PATH": "/usr/bin:/bin"})
        assert done.returncode == 0, (exported.name, done.stdout, done.stderr)

    # Each download is itself an audit record naming the auditor and the filter.
    exports = stack.audit("event = 'audit.export' AND username = ?", (AUDITOR,))
    assert len(exports) == 3, [dict(r) for r in exports]
    assert {detail(r)["format"] for r in exports} == {"csv", "jsonl"}
    assert all(detail(r)["filter_username"] == TARGET for r in exports)
    # And the refusals are on record too.
    assert any("/audit" in r for r in refusals(stack, ADMIN))
    assert any("/admin" in r for r in refusals(stack, AUDITOR))
    assert len(seen) >= 7, seen  # six admin pages, the audit search

    # Suspected compromise: every session ends, after a typed confirmation (its own page).
    admin.open(f"{stack.portal}/admin/sessions/end-all")
    admin.fill("#reason-all", "session cookies may have leaked (drill)")
    admin.fill("#confirm-all", "end all sessions")
    admin.click("form[action$='/end-all'] button[type=submit]")
    accept_confirm(admin, "End every session of every user now?")
    admin.wait_text("Type END ALL SESSIONS to confirm.")
    assert stack.audit("event = 'admin.all_sessions_ended'") == []
    admin.fill("#reason-all", "session cookies may have leaked (drill)")
    admin.fill("#confirm-all", "END ALL SESSIONS")
    admin_cookies = admin.cookies()
    admin.click("form[action$='/end-all'] button[type=submit]")
    accept_confirm(admin, "End every session of every user now?")
    admin.wait_text("All sessions ended")
    [everyone] = stack.audit("event = 'admin.all_sessions_ended'")
    assert everyone["username"] == "*" and detail(everyone)["actor"] == ADMIN
    assert "(drill)" in detail(everyone)["why"]
    assert stack.verify(MFA_APP, admin_cookies).status_code == 401
    admin.open(f"{stack.portal}/admin")
    admin.wait_url(f"{stack.portal}/login?rd=")


def test_staff_without_a_role_gets_403_on_both_consoles(people: Stack, browser: Page) -> None:
    stack = people
    settle(browser)
    browser.open(f"{stack.app}/whoami.json")
    browser.sign_in(NO_ROLE)
    assert arrive(browser, stack, "/whoami.json")["Remote-User"] == NO_ROLE
    for url in (f"{stack.portal}/admin", f"{stack.portal}/admin/users/{ADMIN}",
                f"{stack.portal}/admin/bans", f"{stack.portal}/audit/",
                f"{stack.portal}/audit/export.csv", f"{stack.portal}/audit/export.jsonl"):
        forbidden(browser, url)
    browser.open(f"{stack.portal}/admin")
    browser.wait_for("h1")
    browser.screenshot("20-admin-forbidden")
    # A change posted by hand is refused too (the CSRF token of his own pages, no role).
    browser.open(f"{stack.portal}/account")
    browser.wait_for("h1")
    posted = browser.driver.execute_async_script("""
const [url, done] = arguments;
fetch(url, {method: "POST", headers: {"Content-Type": "application/x-www-form-urlencoded"},
            body: "csrf_token=" + encodeURIComponent(document.body.dataset.csrf)
                  + "&reason=just+because+I+can"})
  .then(r => done(r.status)).catch(e => done(String(e)));
""", f"{stack.portal}/admin/users/{ADMIN}/factors/reset")
    assert posted == 403, posted
    assert stack.audit("event = 'admin.factors_reset' AND username = ?", (ADMIN,)) == []
    reasons = refusals(stack, NO_ROLE)
    assert any(r.startswith("/admin") and "admin_role_missing" in r for r in reasons), reasons
    assert any(r.startswith("/audit") and "auditor_role_missing" in r for r in reasons), reasons


def test_admin_signed_in_with_an_authenticator_app_is_asked_for_the_key(
        people: Stack, browser: Page) -> None:
    stack = people
    settle(browser)
    # An admin with an authenticator app and a key, who signs in with the app (mfa).
    enrol_code_page(browser, stack, MFA_ADMIN)
    secret = setup_totp(browser, "Mara's phone")
    browser.open(f"{stack.portal}/enrol")
    browser.wait_for("#webauthn-register")
    browser.click("#webauthn-register")
    browser.wait_url(f"{stack.portal}/enrol/finish")
    sign_out(browser, stack)
    password_step(browser, stack, MFA_ADMIN, MFA_APP)
    browser.wait_for("#code")
    browser.fill("#code", totp_now(secret, offset_steps=1))
    browser.find("#code").submit()
    assert arrive(browser, stack, MFA_APP)["Remote-User"] == MFA_ADMIN
    assert stack.verify(STRONG_APP, browser.cookies()).status_code == 401
    at_mfa = session_cookie(browser)

    # The admin console asks for the security key, and only for it.
    browser.open(f"{stack.portal}/admin")
    browser.wait_url(f"{stack.portal}/login/next?rd=")
    browser.wait_for("#webauthn-login")
    assert "needs your security key" in browser.text()
    assert not browser.has("#code") and not browser.has("#recovery")
    assert not browser.has("#q")
    browser.screenshot("20-admin-step-up")
    use_key(browser)
    browser.wait_url(f"{stack.portal}/admin")
    browser.wait_for("#q")
    assert focused(browser).get_attribute("id") == "q"  # autofocus: type at once
    assert session_cookie(browser) != at_mfa
