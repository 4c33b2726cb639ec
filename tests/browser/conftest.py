"""A real stack for the browser tests, and a real browser.

Session-scoped: nginx (the repository's ``deploy/nginx/authgate.conf.template``, with TLS
taken out: WebAuthn and ``Secure`` cookies work on ``http://localhost``, which browsers treat
as a secure context, while Chromium refuses WebAuthn on a certificate it has to be told to
ignore) in front of the sample app and of authgate, both under gunicorn; SQLite in a temp
dir; a users file. The app is ``http://localhost:APP``, the portal ``http://localhost:PORTAL``.

Per test: a fresh headless Chromium with its own profile and a virtual authenticator
(CTAP2, internal, resident keys, user verification) added after the first page load.

Missing chromium, chromedriver, nginx or oathtool fail the run: these tests never skip.
"""
from __future__ import annotations

import base64
import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from argon2 import PasswordHasher

from tests.integration.harness import (
    NGINX_TEMPLATE,
    ROOT,
    Proc,
    free_port,
    make_prefix,
    start_authgate,
    start_gunicorn,
    start_nginx,
    stop,
    write_authgate_config,
)

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
CHROME_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                "--window-size=1100,900", "--lang=en-US")

PASSWORD = "browser-test-password-for-staff"  # noqa: S105 - test accounts
#: one account per test that burns second-factor failures, so the per-user throttle
#: (5 failures / 15 min) of one test never leaks into another
STAFF = ("alice", "bruno", "chen", "dana", "emil", "farah", "gita", "hugo", "ines", "jon",
         "lena", "milo")
ADMIN = "adam"
#: an admin whose only factor at first is an authenticator app (issue 14 finding 3)
TOTP_ADMIN = "kai"
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


def _require_binaries() -> None:
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    missing += [n for n in ("nginx", "oathtool") if shutil.which(n) is None
                and not os.access(f"/usr/sbin/{n}", os.X_OK)]
    if missing:
        pytest.fail("browser tests need Debian's chromium, chromium-driver, nginx and oathtool "
                    f"(apt-get install -y chromium chromium-driver nginx oathtool); missing: "
                    f"{missing}", pytrace=False)
    try:
        import selenium  # noqa: F401
    except ImportError:  # pragma: no cover - a broken venv
        pytest.fail("selenium is not installed in the venv (pip install -e .[test])",
                    pytrace=False)


# -- the stack ----------------------------------------------------------------------------
def _http_template(directory: Path) -> Path:
    """The deployment template with its TLS lines removed: same locations, same headers."""
    text = NGINX_TEMPLATE.read_text(encoding="utf-8")
    text = re.sub(r"^(\s*listen [^;]*?) ssl\b", r"\1", text, flags=re.M)
    text = re.sub(r"^\s*ssl_[a-z_]+ [^;]*;\n", "", text, flags=re.M)
    assert " ssl" not in re.sub(r"#.*", "", text), "TLS left in the http nginx config"
    path = directory / "authgate-http.conf.template"
    path.write_text(text, encoding="utf-8")
    return path


def _write_users(path: Path) -> None:
    from authgate.directory.file import FileDirectory

    directory = FileDirectory(path, hasher=FAST_HASHER)
    for name in STAFF:
        directory.add_user(name, PASSWORD, display_name=f"{name.title()} Example",
                           email=f"{name}@city.test", groups=["City-Staff"])
    directory.add_user(ADMIN, PASSWORD, display_name="Adam Admin", email="adam@city.test",
                       groups=["authgate-admins"])
    directory.add_user(TOTP_ADMIN, PASSWORD, display_name="Kai Admin", email="kai@city.test",
                       groups=["City-Staff", "authgate-admins"])


@dataclass
class Stack:
    run_dir: Path
    config: Path
    db: Path
    app_port: int
    portal_port: int
    gateway_port: int
    upstream_port: int
    procs: list[Proc] = field(default_factory=list)
    services: Any = None

    @property
    def app(self) -> str:
        return f"http://localhost:{self.app_port}"

    @property
    def portal(self) -> str:
        return f"http://localhost:{self.portal_port}"

    def issue_code(self, username: str, ttl: timedelta = timedelta(hours=1)) -> str:
        """An enrolment code issued by the admin, as ``authgate enrol issue`` does."""
        from authgate.core.values import RequestMeta

        issued = self.services.mfa.enrolment.issue(username=username, issued_by=ADMIN, ttl=ttl,
                                                   meta=RequestMeta())
        return str(issued.code)

    def audit(self, where: str = "1=1", args: tuple[object, ...] = ()) -> list[sqlite3.Row]:
        with sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=10) as conn:
            conn.row_factory = sqlite3.Row
            return conn.execute(f"SELECT * FROM audit_events WHERE {where} ORDER BY id",
                                args).fetchall()

    def verify(self, path: str, cookies: dict[str, str]) -> requests.Response:
        """Ask authgate's /verify directly, with the headers nginx's auth_request sends."""
        headers = {"X-Original-URI": path, "X-Original-Method": "GET",
                   "X-Forwarded-Proto": "http", "X-Forwarded-Host": f"localhost:{self.app_port}",
                   "X-Forwarded-For": "127.0.0.1", "User-Agent": "browser-test",
                   "Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())}
        return requests.get(f"http://127.0.0.1:{self.gateway_port}/verify", headers=headers,
                            allow_redirects=False, timeout=5)

    def through_nginx(self, path: str, cookies: dict[str, str]) -> requests.Response:
        """The app through nginx with the browser's cookies (no redirects followed)."""
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())}
        return requests.get(f"{self.app}{path}", headers=headers, allow_redirects=False,
                            timeout=5)

    def gateway_log(self) -> str:
        return self.procs[0].log_text() if self.procs else ""


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    _require_binaries()
    from authgate.composition.root import build_services
    from authgate.config import load_settings
    from authgate.storage.engine import migrate

    run_dir = tmp_path_factory.mktemp("browser-stack")
    ports: list[int] = []
    while len(set(ports)) < 4:
        ports = [free_port() for _ in range(4)]
    app_port, portal_port, gateway_port, upstream_port = ports
    # demo mode only for the plain-http portal URL; every secret is a real one
    config = write_authgate_config(
        run_dir, public_url=f"http://localhost:{portal_port}", mode="demo",
        webauthn={"rp_id": "localhost", "origins": [f"http://localhost:{portal_port}"],
                  "passkey_sign_in": True})
    _write_users(run_dir / "users.yaml")
    db = run_dir / "authgate.db"
    migrate(f"sqlite:///{db}")
    env = {"AUTHGATE_CONFIG": str(config)}
    prefix = make_prefix()
    stack = Stack(run_dir, config, db, app_port, portal_port, gateway_port, upstream_port)
    try:
        verify_port = free_port()
        stack.procs.append(start_authgate(env, portal_port=gateway_port,
                                          verify_port=verify_port, run_dir=run_dir))
        stack.procs.append(start_gunicorn(
            "authgate.demo.sample_app:app", upstream_port, {}, workers=2, run_dir=run_dir,
            name="upstream", ready_path="/ready/whoami.json",
            ready=lambda r: r.status_code == 200 and r.json().get("app") == "sample"))
        stack.procs.append(start_nginx(_http_template(prefix), {
            "LISTEN_V4": "127.0.0.1", "LISTEN_V6": "[::1]",
            "APP_HOST": "localhost", "APP_PORT": app_port,
            "PORTAL_HOST": "localhost", "PORTAL_PORT": portal_port,
            "GATEWAY_PORT": gateway_port, "VERIFY_PORT": verify_port,
            "UPSTREAM_PORT": upstream_port, "TLS_CERT": "unused", "TLS_KEY": "unused",
        }, prefix, ready_url=f"http://localhost:{portal_port}/healthz", ca_file=config))
        stack.services = build_services(load_settings(config))
        yield stack
    finally:
        for proc in reversed(stack.procs):
            stop(proc)
        shutil.rmtree(prefix, ignore_errors=True)


@pytest.fixture(autouse=True)
def _no_server_errors(request: pytest.FixtureRequest) -> Iterator[None]:
    """After each test: no stack trace in authgate's log, no 500 in its access log."""
    yield
    if "stack" not in request.fixturenames:
        return
    stack: Stack = request.getfixturevalue("stack")
    gateway = stack.procs[0]
    log = gateway.log_text()
    assert "Traceback" not in log, log[-6000:]
    access = gateway.extra["access_log"].read_text(encoding="utf-8", errors="replace")
    assert '" 500 ' not in access, [line for line in access.splitlines() if '" 500 ' in line]


# -- the browser --------------------------------------------------------------------------
class Page:
    """A Chromium driven by selenium, with the few actions the tests repeat."""

    def __init__(self, driver: Any, stack: Stack) -> None:
        from selenium.webdriver.support.ui import WebDriverWait

        self.driver = driver
        self.stack = stack
        self.wait = WebDriverWait(driver, 10, poll_frequency=0.05)

    # navigation and reading
    def open(self, url: str) -> None:
        self.driver.get(url)

    @property
    def url(self) -> str:
        return str(self.driver.current_url)

    def find(self, css: str) -> Any:
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.CSS_SELECTOR, css)

    def has(self, css: str) -> bool:
        from selenium.webdriver.common.by import By

        return bool(self.driver.find_elements(By.CSS_SELECTOR, css))

    def text(self) -> str:
        return str(self.find("body").text)

    def wait_for(self, css: str, timeout: float = 10) -> Any:
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions as ec
        from selenium.webdriver.support.ui import WebDriverWait

        return WebDriverWait(self.driver, timeout, poll_frequency=0.05).until(
            ec.visibility_of_element_located((By.CSS_SELECTOR, css)),
            f"{css} never showed on {self.url}: {self.page_text()[:600]}")

    def wait_url(self, prefix: str, timeout: float = 10) -> None:
        from selenium.webdriver.support.ui import WebDriverWait

        WebDriverWait(self.driver, timeout, poll_frequency=0.05).until(
            lambda d: d.current_url.startswith(prefix),
            f"never reached {prefix}; at {self.url}: {self.page_text()[:600]}")

    def wait_text(self, text: str, timeout: float = 10) -> None:
        from selenium.webdriver.support.ui import WebDriverWait

        WebDriverWait(self.driver, timeout, poll_frequency=0.05).until(
            lambda d: text in self.page_text(),
            f"{text!r} never showed; at {self.url}: {self.page_text()[:600]}")

    def page_text(self) -> str:
        try:
            return self.text()
        except Exception:  # noqa: BLE001 - only for failure messages
            return "(no page)"

    def json(self) -> Any:
        import json

        return json.loads(self.find("body").text)

    def fill(self, css: str, value: str) -> None:
        element = self.find(css)
        element.clear()
        element.send_keys(value)

    def click(self, css: str) -> None:
        self.find(css).click()

    def cookies(self) -> dict[str, str]:
        return {c["name"]: c["value"] for c in self.driver.get_cookies()}

    # authenticators
    def authenticator(self, *, uv: bool = True, has_uv: bool = True,
                      resident: bool = True) -> None:
        """Replace the virtual authenticator (Chromium tracks one at a time here)."""
        from selenium.webdriver.common.virtual_authenticator import (
            Protocol,
            Transport,
            VirtualAuthenticatorOptions,
        )

        if getattr(self.driver, "_authenticator_id", None):
            self.driver.remove_virtual_authenticator()
        self.driver.add_virtual_authenticator(VirtualAuthenticatorOptions(
            protocol=Protocol.CTAP2, transport=Transport.INTERNAL,
            has_resident_key=resident, has_user_verification=has_uv,
            is_user_consenting=True, is_user_verified=uv))

    # flows
    def sign_in(self, username: str, password: str = PASSWORD, *,
                shot: str | None = None) -> None:
        """On the login page: type the credentials and submit."""
        self.wait_for("#username")
        if shot:
            self.screenshot(shot)
        self.fill("#username", username)
        self.fill("#password", password)
        self.click("form button[type=submit]")

    def screenshot(self, name: str) -> Path:
        """A full-page PNG in test-artifacts/screenshots/."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        width = int(self.driver.execute_script(
            "return Math.max(document.documentElement.scrollWidth, window.innerWidth)"))
        height = int(self.driver.execute_script(
            "return Math.max(document.documentElement.scrollHeight, window.innerHeight)"))
        shot = self.driver.execute_cdp_cmd("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1}})
        path.write_bytes(base64.b64decode(shot["data"]))
        return path


def totp_now(secret: str, *, offset_steps: int = 0) -> str:
    """A code from Debian's oathtool (an implementation independent of pyotp)."""
    args = ["oathtool", "--totp", "-b", secret]
    if offset_steps:
        args.append(f"--now=@{int(time.time()) + offset_steps * 30}")
    done = subprocess.run(args, capture_output=True, text=True, timeout=10, check=True)
    return done.stdout.strip()


@pytest.fixture
def browser(stack: Stack) -> Iterator[Page]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="authgate-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*CHROME_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # CSP reports
    started = time.monotonic()
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(20)
    driver.set_script_timeout(20)
    page = Page(driver, stack)
    try:
        page.open(f"{stack.portal}/healthz")  # a page first: then the authenticator
        page.authenticator()
        page.startup_seconds = time.monotonic() - started  # type: ignore[attr-defined]
        yield page
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def add_people(stack: Stack, people: dict[str, tuple[str, list[str]]]) -> Stack:
    """A module's own accounts in the stack's users file (the stack is shared: an account
    another module added already stays as it is)."""
    from authgate.directory.file import FileDirectory

    directory = FileDirectory(stack.run_dir / "users.yaml", hasher=FAST_HASHER)
    for name, (display, groups) in people.items():
        if directory.lookup(name) is None:
            directory.add_user(name, PASSWORD, display_name=display,
                               email=f"{name}@city.test", groups=groups)
    return stack
