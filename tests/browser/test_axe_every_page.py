"""axe-core on every page of the three roles (issue 17, "How it is judged": zero serious
violations; item 12).

Staff (login, its error, the enrolment code and its refusal, choose a device, the
authenticator-app set-up and its wrong code, device ready, recovery codes, the factor step
and its error, the recent-sign-ins warning, home, my account with another session, sign out,
signed out, 404, an expired form, the password change page and its three refusals; the
app's 403 apart), an admin (every console page, a 403 on the
audit console) and an auditor (search, results, empty, timeline,
summary). Each page: a screenshot ``axe-*.png`` and ``test-artifacts/axe/axe-*.json``; the
test collects every page's serious/critical violations and reports them all at once.

Item 12 rides along: the refused field carries ``aria-invalid`` and ``aria-describedby``
naming the message, the QR code is an image with a text alternative, each session's "End"
button names the device.
"""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.browser.axe import AxeResult, check_page
from tests.browser.conftest import PASSWORD, Page, Stack, add_people, totp_now
from tests.browser.consoles_helpers import chromium, enrol_first_key, settle
from tests.browser.test_pages_a11y import csp_refusals
from tests.browser.test_webauthn_flow import MFA_APP, arrive, login_url, sign_out

pytestmark = pytest.mark.integration

STAFF_USER = "petra"     # City-Staff, authenticator app
ADMIN_USER = "olga"      # authgate-admins, security key
AUDIT_USER = "aurelio"   # authgate-auditors, security key
PEOPLE = {STAFF_USER: ("Petra Staff", ["City-Staff"]),
          ADMIN_USER: ("Olga Admin", ["authgate-admins"]),
          AUDIT_USER: ("Aurelio Auditor", ["authgate-auditors", "City-Staff"])}


class Pages:
    """Checks a page, keeps going, and fails at the end with every page's violations."""

    def __init__(self) -> None:
        self.failures: list[str] = []
        self.checked: list[AxeResult] = []

    def __call__(self, page: Page, name: str) -> None:
        try:
            self.checked.append(check_page(page, f"axe-{name}"))
        except AssertionError as exc:
            self.failures.append(str(exc))

    def assert_clean(self, at_least: int) -> None:
        assert not self.failures, "\n\n".join(self.failures)
        assert len(self.checked) >= at_least, [r.name for r in self.checked]


@pytest.fixture(scope="module")
def people(stack: Stack) -> Stack:
    return add_people(stack, PEOPLE)


@pytest.fixture
def pages() -> Iterator[Pages]:
    yield Pages()


def refused_field(page: Page, css: str) -> None:
    """Item 12: the field whose value was refused points at the message that says why."""
    field = page.find(css)
    assert field.get_attribute("aria-invalid") == "true", field.get_attribute("outerHTML")
    described = (field.get_attribute("aria-describedby") or "").split()
    messages = [page.find(f"#{i}").text for i in described if page.has(f"#{i}")]
    assert any(m.strip() for m in messages), (css, described, messages)
    assert any(page.find(f"#{i}").get_attribute("role") == "alert" for i in described)


def enrol_with_totp(page: Page, stack: Stack, check: Pages) -> str:
    """Enrolment code (a wrong one first), the app set-up (a wrong code first)."""
    page.wait_url(f"{stack.portal}/enrol?rd=")
    page.wait_for("#code")
    check(page, "staff-enrol-code")
    page.fill("#code", "abcd-efgh-jkmn-pqrs")
    page.click("form button[type=submit]")
    page.wait_for(".alert")
    refused_field(page, "#code")
    check(page, "staff-enrol-code-refused")
    page.fill("#code", stack.issue_code(STAFF_USER))
    page.click("form button[type=submit]")
    page.wait_for("#webauthn-register")
    check(page, "staff-enrol-choose")
    page.fill("#app-name", "Petra's phone")
    page.click("form[action$='/enrol/totp/start'] button[type=submit]")
    secret = str(page.wait_for("#totp-secret").text.replace(" ", "").strip())
    qr = page.find(".qr")
    assert qr.get_attribute("role") == "img" and page.has(".qr svg"), \
        qr.get_attribute("outerHTML")[:200]
    label = qr.get_attribute("aria-label") or ""
    assert "QR code" in label and "authenticator app" in label, label
    check(page, "staff-totp-setup")
    page.fill("#code", totp_now(secret, offset_steps=-4))  # a stale code: refused
    page.find("#code").submit()
    page.wait_for("h1")
    check(page, "staff-totp-setup-wrong-code")
    if not page.has("#totp-secret"):  # the set-up starts again (until item 4 keeps it)
        page.open(f"{stack.portal}/enrol")
        page.wait_for("#app-name")
        page.click("form[action$='/enrol/totp/start'] button[type=submit]")
        secret = str(page.wait_for("#totp-secret").text.replace(" ", "").strip())
    page.fill("#code", totp_now(secret))
    page.find("#code").submit()
    page.wait_url(f"{stack.portal}/enrol/finish")
    return secret


def test_staff_pages_have_no_serious_accessibility_violation(people: Stack, browser: Page,
                                                             pages: Pages) -> None:
    stack, page = people, browser
    settle(page)
    page.open(f"{stack.app}{MFA_APP}")
    page.wait_url(login_url(stack, MFA_APP))
    page.wait_for("#username")
    pages(page, "staff-login")
    page.sign_in(STAFF_USER, "not-the-password")
    page.wait_for(".alert")
    refused_field(page, "#password")
    pages(page, "staff-login-error")
    page.sign_in(STAFF_USER)
    secret = enrol_with_totp(page, stack, pages)
    page.wait_text("ready")
    pages(page, "staff-device-ready")
    page.click("form button[type=submit]")
    page.wait_for("#recovery-codes")
    pages(page, "staff-recovery-codes")
    page.click("a.button")
    page.wait_for("h1")
    page.open(f"{stack.portal}/logout")
    page.wait_for("form button[type=submit]")
    pages(page, "staff-sign-out")
    sign_out(page, stack)
    pages(page, "staff-signed-out")
    factor_pages(page, stack, pages, secret)
    portal_pages(page, stack, pages)
    sign_out(page, stack)
    password_change_pages(page, stack, pages)
    pages.assert_clean(at_least=20)
    assert csp_refusals(page) == []  # axe ran without the page's CSP refusing anything


def factor_pages(page: Page, stack: Stack, check: Pages, secret: str) -> None:
    """The second-factor step, a wrong code, the recent-sign-ins warning."""
    page.open(f"{stack.app}{MFA_APP}")
    page.sign_in(STAFF_USER)
    page.wait_url(f"{stack.portal}/login/next?rd=")
    page.wait_for("#code")
    check(page, "staff-factor")
    page.fill("#code", "000000")
    page.click("form[action$='/login/totp'] button[type=submit]")
    page.wait_for(".alert")
    refused_field(page, "#code")
    check(page, "staff-factor-error")
    page.fill("#code", totp_now(secret, offset_steps=1))
    page.click("form[action$='/login/totp'] button[type=submit]")
    page.wait.until(lambda d: "Check your recent sign-ins" in page.page_text()
                    or d.current_url.startswith(f"{stack.app}{MFA_APP}"))
    if "Check your recent sign-ins" in page.page_text():
        check(page, "staff-recent-sign-ins-warning")
        page.click("a.button")
    arrive(page, stack, MFA_APP)


def portal_pages(page: Page, stack: Stack, check: Pages) -> None:
    """Home, my account (another session open elsewhere), error pages, the app's 403."""
    page.open(f"{stack.portal}/")
    page.wait_for("h1")
    check(page, "staff-home")
    with chromium(stack) as other:
        other.sign_in(STAFF_USER)  # a second session: the portal's own home needs no factor
        other.wait.until(lambda d: d.current_url.startswith(f"{stack.portal}/login/next")
                         or d.current_url.rstrip("/") == stack.portal)
        page.open(f"{stack.portal}/account")
        page.wait_for("#sessions")
        end = page.find("form[action*='/sessions/'] button[type=submit]")
        name = end.get_attribute("aria-label") or ""
        assert name.startswith("End session on ") and " started " in name, name
        check(page, "staff-account")
    page.open(f"{stack.portal}/no-such-page")
    page.wait_for("h1")
    check(page, "error-404")
    page.open(f"{stack.portal}/logout")
    page.wait_for("form button[type=submit]")
    page.driver.execute_script(
        "document.querySelector('input[name=csrf_token]').value = 'tampered'")
    page.click("form button[type=submit]")
    page.wait_for("h1")
    check(page, "error-form-expired")


def _mark_password_change_pending(page: Page, stack: Stack) -> None:
    """What sign-in leaves when the directory says the password must change (the file
    directory never says so; tests/conftest.py pending_change does the same in Flask): the
    marker in the page session, signed with the stack's key, as the browser's cookie."""
    from authgate.web import create_app
    from authgate.web.password_change import PENDING, PENDING_FOR

    app = create_app({"services": stack.services, "TESTING": True})
    signer = app.session_interface.get_signing_serializer(app)  # type: ignore[attr-defined]
    name = app.config["SESSION_COOKIE_NAME"]
    [cookie] = [c for c in page.driver.get_cookies() if c["name"] == name]
    data = dict(signer.loads(cookie["value"]))
    data[PENDING] = {"user": STAFF_USER,
                     "until": (stack.services.clock.now() + PENDING_FOR).isoformat()}
    page.driver.delete_cookie(name)
    page.driver.add_cookie({k: v for k, v in cookie.items() if k != "domain"}
                           | {"value": signer.dumps(data)})


POST_CHANGE = """
const [token, user, password] = arguments;
const form = document.createElement("form");
form.method = "post"; form.action = "/password/change";
for (const [n, v] of [["csrf_token", token], ["username", user], ["old_password", password],
                      ["new_password", "a new long password 1"],
                      ["confirm_password", "a different one 2"]]) {
  const input = document.createElement("input");
  input.type = "hidden"; input.name = n; input.value = v; form.appendChild(input);
}
document.body.appendChild(form); form.submit();
"""


def password_change_pages(page: Page, stack: Stack, check: Pages) -> None:
    """The change page and each of its refusals: the confirmation that differs, a wrong
    current password, a new password the directory refuses (must differ from the old)."""
    page.open(f"{stack.portal}/login")
    page.wait_for("#username")
    _mark_password_change_pending(page, stack)
    token = page.find("input[name=csrf_token]").get_attribute("value")
    page.driver.execute_script(POST_CHANGE, token, STAFF_USER, PASSWORD)
    page.wait_for("#confirm_password")
    refused_field(page, "#confirm_password")
    check(page, "staff-password-change-differ")
    for old, new, field in (("not the password", "a new long password 1", "#old_password"),
                            (PASSWORD, PASSWORD, "#new_password")):
        page.fill("#old_password", old)
        page.fill("#new_password", new)
        page.fill("#confirm_password", new)
        page.click("form[action$='/password/change'] button[type=submit]")
        page.wait.until(lambda d, f=field: page.has(f"{f}[aria-invalid=true]"))
        refused_field(page, field)
        check(page, f"staff-password-change-{field[1:].split('_')[0]}")


def admin_pages(page: Page, stack: Stack, check: Pages) -> None:
    page.wait_url(f"{stack.portal}/admin")
    page.wait_for("#q")
    check(page, "admin-home")
    page.fill("#q", "nobody-by-this-name")
    page.find("#q").submit()
    page.wait_for("#not-found")
    assert "not-found" in (page.find("#q").get_attribute("aria-describedby") or "").split()
    check(page, "admin-user-not-found")
    page.open(f"{stack.portal}/admin/users/{STAFF_USER}")
    page.wait_for("#reason-code")
    check(page, "admin-user")
    page.fill("#reason-code", "replacement phone, identity checked")
    page.click("form[action$='/codes'] button[type=submit]")
    page.wait_for("#enrolment-code")
    check(page, "admin-code-issued")
    for path in ("bans", "policy", "health"):
        page.open(f"{stack.portal}/admin/{path}")
        page.wait_for("h1")
        check(page, f"admin-{path}")
    page.open(f"{stack.portal}/audit/")
    page.wait_for("h1")
    assert page.driver.title.startswith("Not allowed")
    check(page, "admin-audit-403")


def auditor_pages(page: Page, stack: Stack, check: Pages) -> None:
    page.wait_url(f"{stack.portal}/audit/")
    page.wait_for("#user")
    check(page, "audit-search")
    page.open(f"{stack.portal}/audit/?user={STAFF_USER}")
    page.wait_for("#audit-results")
    check(page, "audit-results")
    page.open(f"{stack.portal}/audit/?user=nobody-by-this-name")
    page.wait_text("No records match.")
    check(page, "audit-empty")
    for view in ("timeline", "summary"):
        page.open(f"{stack.portal}/audit/{view}?user={STAFF_USER}")
        page.wait_for("h1")
        check(page, f"audit-{view}")


def test_admin_and_auditor_pages_have_no_serious_accessibility_violation(
        people: Stack, browser: Page, pages: Pages) -> None:
    stack = people
    settle(browser)
    enrol_first_key(browser, stack, ADMIN_USER, f"{stack.portal}/admin")
    admin_pages(browser, stack, pages)
    with chromium(stack) as auditor:
        enrol_first_key(auditor, stack, AUDIT_USER, f"{stack.portal}/audit/")
        auditor_pages(auditor, stack, pages)
        assert csp_refusals(auditor) == []
    pages.assert_clean(at_least=13)
    assert csp_refusals(browser) == []


def test_the_apps_403_page_has_no_serious_accessibility_violation(stack: Stack,
                                                                  browser: Page) -> None:
    """nginx's error_page 403 serves authgate's styled refusal page (issue 17 item 3)."""
    browser.open(f"{stack.app}/forbidden/")
    check_page(browser, "axe-error-app-403")
