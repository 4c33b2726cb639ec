"""Issue 17 item 7 walked in Chromium through nginx: recovery codes after a first device,
kept (Print, Download), spent, counted, and replaced when few are left.

``quinn`` sets up an authenticator app; creating codes is the default step. Print calls the
browser's print (its stylesheet keeps only the codes); Download saves ``recovery-codes.txt``
(Chromium's own download), and the same request fetched in the page shows an attachment that
no cache keeps and that holds exactly the ten codes shown. Recovery-code sign-ins then show
the count left; a wrong code is refused at its field; at ``FEW_RECOVERY_CODES`` left the page
prompts for new ones, the new set works and the old set no longer does.

Every authgate page on the way: a screenshot and the axe-core check (``journeys-rc-*``).
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from authgate.core.values import RequestMeta
from authgate.web.factor_login import FEW_RECOVERY_CODES
from tests.browser.conftest import Page, Stack, add_people, totp_now
from tests.browser.consoles_helpers import chromium, wait_download
from tests.browser.test_axe_every_page import refused_field
from tests.browser.test_journeys_add_key import leads_on, page_check
from tests.browser.test_webauthn_flow import MFA_APP, arrive, login_url, sign_out

pytestmark = pytest.mark.integration

USER = "quinn"
PEOPLE = {USER: ("Quinn Staff", ["City-Staff"])}

#: the Download form's own request, made from the page (its CSRF field included)
FETCH_DOWNLOAD = """
const done = arguments[arguments.length - 1];
const form = document.getElementById("download-codes").form;
fetch(form.action, {method: "POST", body: new FormData(form), credentials: "same-origin"})
  .then(async r => done({status: r.status, type: r.headers.get("content-type"),
                         disposition: r.headers.get("content-disposition"),
                         cache: r.headers.get("cache-control"), body: await r.text()}))
  .catch(e => done({error: String(e)}));
"""


@pytest.fixture(scope="module")
def people(stack: Stack) -> Stack:
    return add_people(stack, PEOPLE)


def shown_codes(page: Page) -> list[str]:
    page.wait_for("#recovery-codes")
    return [li.text.strip() for li in page.driver.find_elements("css selector",
                                                                "#recovery-codes li")]


def codes_in(text: str) -> list[str]:
    return re.findall(r"^\s*\d+\.\s+(\S+)\s*$", text, flags=re.M)


def keep_the_codes(page: Page, downloads: Path) -> list[str]:
    """Print and Download on the codes page; both carry exactly the codes shown."""
    codes = shown_codes(page)
    assert len(codes) == 10 and len(set(codes)) == 10, codes
    page_check(page, "rc-codes")
    page.driver.execute_script("window.printed = 0; window.print = () => window.printed++;")
    page.click("#print-codes")
    assert page.driver.execute_script("return window.printed") == 1
    page.driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
    assert page.find("#recovery-codes").is_displayed()
    assert not page.find("#print-codes").is_displayed()  # on paper: the codes, no buttons
    page.driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})
    page.click("#download-codes")
    saved = wait_download(downloads, ".txt").read_text(encoding="utf-8")
    assert codes_in(saved) == codes, saved
    got = page.driver.execute_async_script(FETCH_DOWNLOAD)
    assert got.get("status") == 200, got
    assert got["disposition"] == 'attachment; filename="recovery-codes.txt"', got
    assert got["cache"] == "no-store" and got["type"].startswith("text/plain"), got
    assert codes_in(got["body"]) == codes and got["body"] == saved
    assert "recovery codes for quinn" in got["body"]
    assert page.url.startswith(f"{page.stack.portal}/enrol/finish")  # still on the page
    leads_on(page, "#codes-saved")
    return codes


def sign_in_with_code(page: Page, stack: Stack, code: str) -> str:
    """Password, then "Lost your device?" and a recovery code; the arrival page's text."""
    page.open(f"{stack.app}{MFA_APP}")
    page.wait_url(login_url(stack, MFA_APP))
    page.sign_in(USER)
    page.wait_url(f"{stack.portal}/login/next?rd=")
    page.click("details summary")
    page.fill("#recovery", code)
    page.find("#recovery").submit()
    return " ".join(str(page.wait_for("#recovery-left").text).split())


def test_codes_are_kept_counted_and_replaced_when_few_are_left(people: Stack,
                                                               tmp_path: Path) -> None:
    stack = people
    with chromium(stack, tmp_path) as page:
        page.open(f"{stack.app}{MFA_APP}")
        page.wait_url(login_url(stack, MFA_APP))
        page.sign_in(USER)
        page.wait_url(f"{stack.portal}/enrol?rd=")
        page.fill("#code", stack.issue_code(USER))
        page.click("form button[type=submit]")
        page.wait_for("#app-name")
        page.click("form[action$='/enrol/totp/start'] button[type=submit]")
        secret = str(page.wait_for("#totp-secret").text.replace(" ", "").strip())
        page.fill("#code", totp_now(secret))
        page.find("#code").submit()
        # The default step after a first device: create the codes.
        page.wait_for("#create-codes")
        assert "One more step" in page.text()
        assert page.driver.execute_script("return document.activeElement.id") == "create-codes"
        page_check(page, "rc-default-step")
        page.click("#create-codes")
        codes = keep_the_codes(page, tmp_path)
        page.click("#codes-saved")
        page.wait_for("#code")
        page.fill("#code", totp_now(secret, offset_steps=1))
        page.find("#code").submit()
        arrive(page, stack, MFA_APP)
        sign_out(page, stack)

        # Codes spent elsewhere (earlier days) until two more sign-ins reach the threshold.
        spend = 10 - (FEW_RECOVERY_CODES + 2)
        for code in codes[:spend]:
            stack.services.mfa.recovery.use(username=USER, code=code, meta=RequestMeta())
        # A wrong code first: refused at its field, the form still open.
        page.open(f"{stack.app}{MFA_APP}")
        page.sign_in(USER)
        page.wait_url(f"{stack.portal}/login/next?rd=")
        page.click("details summary")
        page.fill("#recovery", codes[0])  # already used
        page.find("#recovery").submit()
        page.wait_for("#factor-error")
        refused_field(page, "#recovery")
        page_check(page, "rc-code-refused")
        page.fill("#recovery", codes[spend])
        page.find("#recovery").submit()
        left = " ".join(str(page.wait_for("#recovery-left").text).split())
        assert f"You have {FEW_RECOVERY_CODES + 1} recovery codes left." in left, left
        assert not page.has("#new-codes")  # above the threshold: no prompt
        page_check(page, "rc-left-enough")
        leads_on(page, "#continue")
        page.click("#continue")
        arrive(page, stack, MFA_APP)
        sign_out(page, stack)

        left = sign_in_with_code(page, stack, codes[spend + 1])
        assert f"You have {FEW_RECOVERY_CODES} recovery codes left." in left, left
        assert "Create a new set now" in left
        page_check(page, "rc-left-few")
        leads_on(page, "#new-codes")
        leads_on(page, "#continue")
        page.click("#new-codes")
        page.wait_url(f"{stack.portal}/enrol/finish?rd=")
        page.wait_for("#create-codes")
        assert "running out of recovery codes" in page.text()
        assert page.driver.execute_script("return document.activeElement.id") == "create-codes"
        page_check(page, "rc-replace")
        page.click("#create-codes")
        new = shown_codes(page)
        assert not set(new) & set(codes)
        page_check(page, "rc-new-codes")
        page.click("#codes-saved")
        arrive(page, stack, MFA_APP)
        sign_out(page, stack)

        # The old set stopped working; the new one works and counts from ten.
        page.open(f"{stack.app}{MFA_APP}")
        page.sign_in(USER)
        page.wait_url(f"{stack.portal}/login/next?rd=")
        page.click("details summary")
        page.fill("#recovery", codes[-1])
        page.find("#recovery").submit()
        page.wait_for("#factor-error")
        refused_field(page, "#recovery")
        page.fill("#recovery", new[0])
        page.find("#recovery").submit()
        left = " ".join(str(page.wait_for("#recovery-left").text).split())
        assert "You have 9 recovery codes left." in left, left
        page.click("#continue")
        assert arrive(page, stack, MFA_APP)["Remote-User"] == USER
