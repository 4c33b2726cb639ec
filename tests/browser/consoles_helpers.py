"""People and steps for the console tests (admin and auditor consoles in a real browser).

The stack of ``conftest.py`` knows staff accounts and one admin; the consoles also need an
auditor, an admin who holds only an authenticator app, a staff member the admin works on and
one with no role at all. They are added to the running stack's users file (the directory
re-reads it when it changes). A second, third browser profile comes from ``chromium()``:
the same flags as the ``browser`` fixture, plus a download directory.
"""
from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.browser.conftest import (
    CHROME_FLAGS,
    CHROMEDRIVER,
    CHROMIUM,
    FAST_HASHER,
    PASSWORD,
    Page,
    Stack,
)

TARGET = "tomas"      # the staff member the admin works on (City-Staff)
AUDITOR = "audrey"    # authgate-auditors
MFA_ADMIN = "mara"    # authgate-admins, signs in with an authenticator app
NO_ROLE = "nils"      # City-Staff only: no console for him
PEOPLE = {
    TARGET: ("Tomas Target", ["City-Staff"]),
    AUDITOR: ("Audrey Auditor", ["authgate-auditors", "City-Staff"]),
    MFA_ADMIN: ("Mara Admin", ["authgate-admins"]),
    NO_ROLE: ("Nils Noroles", ["City-Staff"]),
}


def add_people(stack: Stack) -> None:
    """The console tests' accounts, added once to the stack's users file."""
    from authgate.directory.file import FileDirectory

    directory = FileDirectory(stack.run_dir / "users.yaml", hasher=FAST_HASHER)
    for name, (display, groups) in PEOPLE.items():
        if directory.lookup(name) is None:
            directory.add_user(name, PASSWORD, display_name=display,
                               email=f"{name}@city.test", groups=groups)


# -- browsers -----------------------------------------------------------------------------
def settle(page: Page) -> None:
    """Hold the portal's CSRF cookie steady before any form is filled.

    A fresh profile's first page makes Chromium fetch ``/favicon.ico`` in the background;
    authgate answers it with a 404 page that mints a CSRF secret of its own, and when that
    answer lands after the login page's, the login form's token no longer matches its
    cookie ("Form expired"). Loading a portal page and waiting until the cookie stops
    changing keeps these tests out of that race (reported as an authgate defect)."""
    page.open(f"{page.stack.portal}/login")
    page.wait_for("#username")
    seen, since = None, time.monotonic()
    deadline = since + 5
    while time.monotonic() < deadline:
        value = next((v for k, v in page.cookies().items() if k.startswith("__Host-csrf-")), None)
        if value != seen:
            seen, since = value, time.monotonic()
        elif value and time.monotonic() - since >= 0.4:
            return
        time.sleep(0.05)
    raise AssertionError(f"the CSRF cookie never settled: {page.cookies()}")


@contextmanager
def chromium(stack: Stack, downloads: Path | None = None) -> Iterator[Page]:
    """Another browser profile (another person), optionally saving downloads to a folder."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="authgate-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*CHROME_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    if downloads is not None:
        options.add_experimental_option("prefs", {
            "download.default_directory": str(downloads),
            "download.prompt_for_download": False,
            "download.directory_upgrade": True,
            "safebrowsing.enabled": False})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(20)
    driver.set_script_timeout(20)
    if downloads is not None:
        driver.execute_cdp_cmd("Browser.setDownloadBehavior", {
            "behavior": "allow", "downloadPath": str(downloads), "eventsEnabled": True})
    page = Page(driver, stack)
    try:
        page.open(f"{stack.portal}/healthz")
        page.authenticator()
        settle(page)
        yield page
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait_download(folder: Path, suffix: str, timeout: float = 10) -> Path:
    """The one finished file ending in ``suffix`` that Chromium saved into ``folder``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = [p for p in folder.iterdir() if p.name.endswith(suffix)]
        partial = [p for p in folder.iterdir() if p.name.endswith(".crdownload")]
        if done and not partial:
            return done[0]
        time.sleep(0.05)
    raise AssertionError(f"no {suffix} download in {sorted(p.name for p in folder.iterdir())}")


FETCH = """
const [url, done] = arguments;
fetch(url, {credentials: "same-origin"})
  .then(async r => done({status: r.status, type: r.headers.get("content-type"),
                         disposition: r.headers.get("content-disposition"),
                         body: await r.text()}))
  .catch(e => done({error: String(e)}));
"""


def fetch(page: Page, url: str) -> dict[str, Any]:
    """GET ``url`` from inside the page (its cookies, its origin)."""
    return dict(page.driver.execute_async_script(FETCH, url))


# -- steps --------------------------------------------------------------------------------
def enrol_first_key(page: Page, stack: Stack, user: str, start: str) -> None:
    """Open ``start``; sign in; redeem an enrolment code issued in-process; add the key;
    continue to ``start``."""
    page.open(start)
    page.wait_url(f"{stack.portal}/login?rd=")
    page.sign_in(user)
    page.wait_url(f"{stack.portal}/enrol?rd=")
    page.fill("#code", stack.issue_code(user))
    page.click("form button[type=submit]")
    continue_after_key(page, stack)


def continue_after_key(page: Page, stack: Stack) -> None:
    """On the choose-a-device page: register the virtual key, then "Continue"."""
    page.wait_for("#webauthn-register")
    page.click("#webauthn-register")
    page.wait_url(f"{stack.portal}/enrol/finish")
    page.wait_text("Your sign-in device is ready")
    page.click("a.button.secondary")  # "Continue to the application"
    # Registering raised nothing (issue 14): the new key is proven in the normal step.
    page.wait_for("#webauthn-login")
    page.click("#webauthn-login")


def detail(row: Any) -> dict[str, str]:
    return dict(json.loads(row["detail"] or "{}"))


def accept_confirm(page: Page, expected: str) -> None:
    """The destructive-action dialog (confirm.js): read it, accept it."""
    from selenium.webdriver.support import expected_conditions as ec

    page.wait.until(ec.alert_is_present(), "no confirmation dialog")
    alert = page.driver.switch_to.alert
    assert expected in alert.text, alert.text
    alert.accept()
