"""Issue 18 item 4: every key rotates under traffic and nobody notices.

The gateway as deployed (``authgate serve`` behind the shipped nginx template, over TLS,
production mode, keys in 0600 files). Two users are signed in (alice with a password,
carol with a TOTP code) and a thread keeps asking for their pages through nginx the whole
time. Each key kind is rotated the way docs/deployment.md ("Rotating keys") says: ``authgate
keys rotate KIND``, then ``SIGHUP`` to ``authgate serve`` (``systemctl reload``), and for
TOTP ``keys rotate totp --reencrypt`` once the workers have reloaded. Proven after each
step: no request of the signed-in users was refused, a TOTP user enrolled before any
rotation still signs in, a form opened before the session key changed still submits, and
``authgate audit verify`` exits 0 (old records under old chain keys, old checkpoints under
the retired signing key).
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyotp
import pytest
import yaml

from authgate.audit.checkpoints import generate_key_file, retired_keys_path
from authgate.core.secretbox import generate_key_spec
from tests.integration.harness import (
    NGINX_TEMPLATE,
    ROOT,
    VENV_BIN,
    Browser,
    Proc,
    TlsFiles,
    free_port,
    make_prefix,
    make_tls,
    start_authgate,
    start_gunicorn,
    start_nginx,
    stop,
    write_authgate_config,
)

pytestmark = pytest.mark.integration

PASSWORD = "integration-password-for-rotation"  # noqa: S105 - test accounts
USERS = ("alice", "carol", "tina", "tom", "tess", "todd", "tara")
TOTP_USERS = USERS[1:]
COOKIE = "__Host-authgate_session"


@dataclass
class Gateway:
    tls: TlsFiles
    app_port: int
    portal_port: int
    env: dict[str, str]
    config: Path
    gateway: Proc
    seeds: dict[str, str] = field(default_factory=dict)

    @property
    def app(self) -> str:
        return f"https://localhost:{self.app_port}"

    def browser(self) -> Browser:
        return Browser(self.tls.ca_cert)


def authgate(env: dict[str, str], *args: str, stdin: str = "") -> str:
    done = subprocess.run([str(VENV_BIN / "authgate"), *args], input=stdin, text=True,
                          capture_output=True, env={**os.environ, **env}, cwd=ROOT, timeout=120)
    assert done.returncode == 0, f"authgate {' '.join(args)}: {done.stdout}{done.stderr}"
    return done.stdout


def _config(run_dir: Path, portal_port: int) -> Path:
    """The harness's production config, with the TOTP keys and the checkpoint signing key
    in files of their own (rotation rewrites files)."""
    config = write_authgate_config(run_dir, public_url=f"https://localhost:{portal_port}")
    data = yaml.safe_load(config.read_text())
    keys = run_dir / "secrets" / "totp_keys"
    keys.write_text(generate_key_spec("k1") + "\n")
    keys.chmod(0o600)
    data["secrets"].pop("encryption_keys")
    data["secrets"]["encryption_keys_file"] = str(keys)
    generate_key_file(run_dir / "secrets" / "signing.pem")
    data["audit"] = {"signing_key_file": str(run_dir / "secrets" / "signing.pem"),
                     "checkpoint_every": 20}
    config.write_text(yaml.safe_dump(data))
    return config


def _enrol_totp(config: Path) -> dict[str, str]:
    """TOTP for each TOTP user, through the real service (start + confirm)."""
    from authgate.composition.root import build_services
    from authgate.config import load_settings
    from authgate.core.values import RequestMeta

    services = build_services(load_settings(config, environ={}))
    seeds = {}
    for name in TOTP_USERS:
        pending = services.mfa.totp.start(username=name, name="phone", meta=RequestMeta())
        services.mfa.totp.confirm(username=name, credential_id=pending.credential_id,
                                  code=pyotp.TOTP(pending.secret).at(time.time() - 30),
                                  meta=RequestMeta())
        seeds[name] = pending.secret
    services.audit.close()
    return seeds


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    run_dir = tmp_path_factory.mktemp("rotation")
    app_port, portal_port, gateway_port, upstream_port, verify_port = (
        free_port() for _ in range(5))
    config = _config(run_dir, portal_port)
    env = {"AUTHGATE_CONFIG": str(config)}
    authgate(env, "db", "upgrade")
    for name in USERS:
        authgate(env, "users", "add", name, "--password-stdin", "--group", "City-Staff",
                 stdin=PASSWORD + "\n")
    seeds = _enrol_totp(config)
    tls, prefix = make_tls(run_dir / "tls"), make_prefix()
    procs: list[Proc] = []
    try:
        procs.append(start_authgate(env, portal_port=gateway_port, verify_port=verify_port,
                                    run_dir=run_dir))
        procs.append(start_gunicorn(
            "authgate.demo.sample_app:app", upstream_port, {}, workers=2, run_dir=run_dir,
            name="upstream", ready_path="/ready/whoami.json",
            ready=lambda r: r.status_code == 200 and r.json().get("app") == "sample"))
        procs.append(start_nginx(NGINX_TEMPLATE, {
            "LISTEN_V4": "127.0.0.1", "LISTEN_V6": "[::1]",
            "APP_HOST": "localhost", "APP_PORT": app_port,
            "PORTAL_HOST": "localhost", "PORTAL_PORT": portal_port,
            "GATEWAY_PORT": gateway_port, "VERIFY_PORT": verify_port,
            "UPSTREAM_PORT": upstream_port, "TLS_CERT": tls.cert, "TLS_KEY": tls.key,
        }, prefix, ready_url=f"https://localhost:{portal_port}/healthz", ca_file=tls.ca_cert))
        yield Gateway(tls, app_port, portal_port, env, config, procs[0], seeds)
    finally:
        for proc in reversed(procs):
            stop(proc)
        shutil.rmtree(prefix, ignore_errors=True)


def sign_in(gw: Gateway, name: str, *, step: int = 0) -> Browser:
    """Password (and, for TOTP users, a code) through nginx and the real forms."""
    browser = gw.browser()
    first = browser.get(f"{gw.app}/mfa/{name}" if name in gw.seeds else f"{gw.app}/{name}")
    assert first.status_code == 302, first.status_code
    done = browser.login(first.headers["Location"], name, PASSWORD)
    if name in gw.seeds:
        assert done.status_code == 200 and 'name="code"' in done.text, done.text[:300]
        token = re.search(r'name="csrf_token" value="([^"]+)"', done.text)
        rd = re.search(r'name="rd" value="([^"]*)"', done.text)
        assert token and rd
        code = pyotp.TOTP(gw.seeds[name]).at(time.time() + 30 * step)
        done = browser.post(done.url.split("/login")[0] + "/login/totp", data={
            "csrf_token": token.group(1), "rd": rd.group(1).replace("&amp;", "&"),
            "code": code})
    assert done.status_code == 303, (done.status_code, done.text[:400])
    assert COOKIE in browser.cookies
    return browser


class Traffic(threading.Thread):
    """The signed-in users' requests through nginx, all the time; every answer recorded."""

    def __init__(self, gw: Gateway, browsers: dict[str, tuple[Browser, str]]) -> None:
        super().__init__(daemon=True)
        self.gw, self.browsers = gw, browsers
        self.stopping = threading.Event()
        self.answers = 0
        self.refused: list[tuple[str, int]] = []

    def run(self) -> None:
        while not self.stopping.is_set():
            for name, (browser, path) in self.browsers.items():
                try:
                    status = browser.get(f"{self.gw.app}{path}").status_code
                except OSError as exc:  # a refused connection is a refusal too
                    self.refused.append((name, -1))
                    print(exc)
                    continue
                self.answers += 1
                if status != 200:
                    self.refused.append((name, status))
            time.sleep(0.05)  # steady traffic, not a load test (the machine is shared)


def reload_gateway(gw: Gateway) -> None:
    """SIGHUP to ``authgate serve`` and wait until both pools run new workers."""
    log = gw.gateway.log_text
    booted = log().count("Booting worker")
    os.kill(gw.gateway.popen.pid, signal.SIGHUP)
    deadline = time.monotonic() + 60
    while log().count("Booting worker") < booted + 4:
        assert time.monotonic() < deadline, log()[-3000:]
        time.sleep(0.1)
    time.sleep(1.0)  # the old workers finish their requests and leave


def test_every_key_rotates_under_traffic_and_nobody_is_signed_out(gw: Gateway) -> None:
    alice, carol = sign_in(gw, "alice"), sign_in(gw, "carol")
    traffic = Traffic(gw, {"alice": (alice, "/alice/page"), "carol": (carol, "/mfa/carol")})
    traffic.start()
    try:
        form_before = gw.browser()  # a login form on screen while the session key changes
        page = form_before.get(f"{gw.app}/tina")
        login_page = form_before.get(page.headers["Location"])
        assert login_page.status_code == 200
        for kind, user in (("session", "tina"), ("totp", "tom"), ("audit", "tess"),
                           ("signing", "todd")):
            authgate(gw.env, "keys", "rotate", kind)
            reload_gateway(gw)
            if kind == "totp":
                assert "re-encrypted 6 secret(s)" in authgate(gw.env, "keys", "rotate",
                                                              "totp", "--reencrypt")
            sign_in(gw, user)  # a factor enrolled before any rotation still works
        token = re.search(r'name="csrf_token" value="([^"]+)"', login_page.text)
        rd = re.search(r'name="rd" value="([^"]*)"', login_page.text)
        assert token and rd
        submitted = form_before.post(login_page.url.split("?")[0], data={
            "csrf_token": token.group(1), "username": "tina", "password": PASSWORD,
            "rd": rd.group(1).replace("&amp;", "&")})
        assert submitted.status_code == 303, submitted.text[:300]  # not a CSRF refusal
        time.sleep(1.0)
    finally:
        traffic.stopping.set()
        traffic.join(30)
    assert traffic.answers > 50
    assert traffic.refused == [], traffic.refused[:20]
    assert alice.get(f"{gw.app}/alice/end").status_code == 200
    assert carol.get(f"{gw.app}/mfa/carol").status_code == 200
    _assert_keys_moved(gw)
    authgate(gw.env, "audit", "verify")  # exit 0, or authgate() fails the test


def _assert_keys_moved(gw: Gateway) -> None:
    secrets_dir = gw.config.parent / "secrets"
    for name in ("session_key", "audit_key", "totp_keys"):
        assert len((secrets_dir / name).read_text().split()) == 2, name  # new + kept
    assert retired_keys_path(secrets_dir / "signing.pem").is_file()
    import sqlite3

    with sqlite3.connect(gw.config.parent / "authgate.db") as conn:
        reasons = {r for (r,) in conn.execute(
            "SELECT reason FROM audit_events WHERE event = 'keys.rotate'")}
        key_ids = {k for (k,) in conn.execute("SELECT DISTINCT key_id FROM audit_events")}
        signers = {k for (k,) in conn.execute("SELECT DISTINCT key_id FROM audit_checkpoints")}
    assert reasons == {"session_key_rotated", "totp_key_rotated", "totp_seeds",
                       "audit_key_rotated", "signing_key_rotated"}
    assert len(key_ids) == 2, key_ids  # records under the old and the new chain key
    assert len(signers) == 2, signers  # checkpoints by the retired and the new signing key
