"""Issue #14: attack the real stack the way the penetration tester did.

nginx runs the SHIPPED template (only its placeholders filled), twice: once in front of the
Python sample app (gunicorn) and once in front of a real Tomcat 10.1 from Debian, both for the
protected host ``hr.city.test``, with the portal ``localhost`` on the same port (as in
production, where both are on 443). authgate runs in production mode with a small policy
made for the attacks: ``localhost`` has an open area ``/open/`` (a lenient rule on *another*
host), ``hr.city.test`` has ``/public/`` open, ``/forbidden/`` denied, ``/admin/`` at
phishing_resistant and everything else at password. alice is logged in at password.

For every attack request the invariant is checked: **the host and path recorded in the audit
decision are the host and path the upstream actually served (it echoes them), or the request
was refused (4xx, and the upstream's access log never saw its request id).**
"""
from __future__ import annotations

import json
import random
import re
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote

import pytest

from tests.integration.harness import (
    NGINX_TEMPLATE,
    ROOT,
    TEST_POLICIES,
    VENV_BIN,
    Browser,
    Proc,
    TlsFiles,
    free_port,
    make_prefix,
    make_tls,
    raw_https,
    start_authgate,
    start_gunicorn,
    start_nginx,
    stop,
    write_authgate_config,
)
from tests.integration.tomcat import start_tomcat

pytestmark = pytest.mark.integration

APP = "hr.city.test"
PORTAL = "localhost"
PASSWORD = "attack-suite-password-for-alice"  # noqa: S105 - a test account
COOKIE = "__Host-authgate_session"
POLICY = """\
version: 1
rules:
  - {id: portal-open, description: an open area on another host, domains: [localhost],
     paths: ['^/open(/|$)'], level: bypass}
  - {id: hr-public, description: open pages, domains: [hr.city.test],
     paths: ['^/public(/|$)'], level: bypass}
  - {id: hr-forbidden, description: nobody, domains: [hr.city.test],
     paths: ['(?i)^/forbidden(/|$)'], level: deny}
  - {id: hr-admin, description: admin pages, domains: [hr.city.test],
     paths: ['(?i)^/admin(/|$)'], level: phishing_resistant}
  - {id: hr-rest, description: the rest of the app, domains: [hr.city.test], level: password}
  - {id: portal-rest, description: the portal, domains: [localhost], level: password}
"""


@dataclass
class Front:
    """One nginx (from the template) in front of one upstream."""

    name: str
    port: int
    upstream: Proc


@dataclass
class Stack:
    tls: TlsFiles
    db: Path
    fronts: list[Front]
    cookie: str

    def audit(self, rid: str) -> list[sqlite3.Row]:
        with sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=10) as conn:
            conn.row_factory = sqlite3.Row
            return conn.execute("SELECT * FROM audit_events WHERE request_id = ? AND "
                                "event = 'verify'", (rid,)).fetchall()


def _authgate(env: dict[str, str], *args: str, stdin: str = "") -> None:
    done = subprocess.run([str(VENV_BIN / "authgate"), *args], input=stdin, text=True,
                          capture_output=True, env={"PATH": "/usr/bin:/bin", **env}, cwd=ROOT,
                          timeout=60)
    assert done.returncode == 0, f"authgate {' '.join(args)}: {done.stdout}{done.stderr}"


def _policies(run_dir: Path) -> Path:
    directory = run_dir / "policies"
    directory.mkdir()
    shutil.copy(TEST_POLICIES / "00-globals.yaml", directory / "00-globals.yaml")
    (directory / "50-attack.yaml").write_text(POLICY, encoding="utf-8")
    return directory


def _nginx(name: str, port: int, gateway_port: int, upstream_port: int, tls: TlsFiles,
           procs: list[Proc], verify_port: int) -> None:
    prefix = make_prefix()
    procs.append(start_nginx(NGINX_TEMPLATE, {
        "LISTEN_V4": "127.0.0.1", "LISTEN_V6": "[::1]", "APP_HOST": APP, "APP_PORT": port,
        "PORTAL_HOST": PORTAL, "PORTAL_PORT": port, "GATEWAY_PORT": gateway_port,
        "VERIFY_PORT": verify_port,
        "UPSTREAM_PORT": upstream_port, "TLS_CERT": tls.cert, "TLS_KEY": tls.key,
    }, prefix, ready_url=f"https://localhost:{port}/healthz", ca_file=tls.ca_cert))
    procs[-1].extra["prefix"] = prefix


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    run_dir = tmp_path_factory.mktemp("authgate-attack")
    ports = set()
    while len(ports) < 6:
        ports.add(free_port())
    gateway_port, py_port, tc_port, py_front, tc_front, verify_port = sorted(ports)
    config = write_authgate_config(
        run_dir, public_url=f"https://localhost:{py_front}",
        server={"protected_domains": [PORTAL, APP]},
        policy={"path": str(_policies(run_dir)), "require_approval": False})
    env = {"AUTHGATE_CONFIG": str(config)}
    _authgate(env, "db", "upgrade")
    _authgate(env, "users", "add", "alice", "--password-stdin", "--group", "City-Staff",
              stdin=PASSWORD + "\n")
    tls = make_tls(run_dir / "tls", names=(APP,))
    procs: list[Proc] = []
    try:
        procs.append(start_authgate(env, portal_port=gateway_port, verify_port=verify_port,
                                    run_dir=run_dir))
        py = start_gunicorn(
            "authgate.demo.sample_app:app", py_port, {"GUNICORN_CMD_ARGS":
                                                      "--access-logformat='%({x-request-id}i)s'"},
            run_dir=run_dir, name="upstream", ready_path="/ready/whoami.json",
            ready=lambda r: r.status_code == 200 and r.json().get("app") == "sample")
        procs.append(py)
        procs.append(start_tomcat(tc_port))
        _nginx("python", py_front, gateway_port, py_port, tls, procs, verify_port)
        _nginx("tomcat", tc_front, gateway_port, tc_port, tls, procs, verify_port)
        browser = Browser(tls.ca_cert)
        rd = quote(f"https://{APP}:{py_front}/start", safe="")
        done = browser.login(f"https://localhost:{py_front}/login?rd={rd}", "alice", PASSWORD)
        assert done.status_code == 303 and COOKIE in browser.cookies, done.text[:300]
        yield Stack(tls, run_dir / "authgate.db",
                    [Front("python", py_front, py), Front("tomcat", tc_front, procs[2])],
                    browser.cookies[COOKIE])
    finally:
        for proc in reversed(procs):
            stop(proc)
            for key in ("prefix", "base"):
                if key in proc.extra:
                    shutil.rmtree(proc.extra[key], ignore_errors=True)


# -- the invariant -----------------------------------------------------------------------
@dataclass
class Outcome:
    status: int
    rid: str
    served: dict[str, str] | None  # the upstream's echo, None if it served nothing
    audited: list[sqlite3.Row]


def send(stack: Stack, front: Front, raw: bytes, sni: str = APP) -> Outcome:
    status, response = raw_https(front.port, raw, stack.tls.ca_cert, sni=sni)
    head, _, body = response.partition(b"\r\n\r\n")
    match = re.search(rb"\r\nX-Request-ID: ([0-9a-f]{32})", head, re.IGNORECASE)
    rid = match.group(1).decode() if match else ""
    served = None
    if status == 200 and body.lstrip().startswith(b"{"):
        served = json.loads(body)
    return Outcome(status, rid, served, stack.audit(rid) if rid else [])


def reached(front: Front, rid: str) -> bool:
    log = front.upstream.extra["access_log"]
    return bool(rid) and rid in Path(log).read_text(encoding="utf-8", errors="replace")


def assert_judged_as_served(stack: Stack, front: Front, raw: bytes, sni: str = APP) -> Outcome:
    got = send(stack, front, raw, sni)
    what = (front.name, raw[:120], got.status)
    if got.served is None:
        assert 400 <= got.status < 500 or got.status == 302, what
        assert not reached(front, got.rid), ("the upstream saw a refused request", *what)
        return got
    [record] = got.audited
    assert record["outcome"] == "allow", what
    served_path = got.served["path"]
    assert (record["host"], unquote(record["path"])) == (got.served["host"], served_path), \
        (*what, dict(record), got.served)
    return got


def request(target: str, host: str = APP, *, cookie: bool = True, extra: str = "") -> bytes:
    lines = [f"GET {target} HTTP/1.1", f"Host: {host}"] if host else [f"GET {target} HTTP/1.1"]
    if cookie:
        lines.append("Cookie: {cookie}")
    return ("\r\n".join(lines) + "\r\n" + extra + "Connection: close\r\n\r\n").encode()


def fill(raw: bytes, stack: Stack) -> bytes:
    return raw.replace(b"{cookie}", f"{COOKIE}={stack.cookie}".encode())


def both(stack: Stack, raw: bytes, sni: str = APP) -> list[Outcome]:
    return [assert_judged_as_served(stack, front, fill(raw, stack), sni)
            for front in stack.fronts]


# -- finding 1: the host ----------------------------------------------------------------
def test_absolute_form_cannot_borrow_another_hosts_rule(stack: Stack) -> None:
    """The pen-test case: the request line names hr, ``Host`` names the portal, whose
    ``/open/`` is a bypass. nginx routes on hr; hr has no such bypass: log in first."""
    for cookie in (False, True):
        raw = request(f"https://{APP}/open/whoami.json", host=PORTAL, cookie=cookie)
        outcomes = both(stack, raw)
        if not cookie:
            assert all(o.served is None for o in outcomes), [o.status for o in outcomes]


HOST_ATTACKS = [
    request(f"https://{APP}/x/whoami.json", host="evil.example"),
    request(f"http://{APP}/x/whoami.json", host=PORTAL),
    request(f"https://{APP}:1/x/whoami.json", host=f"{PORTAL}:1"),
    request(f"https://{PORTAL}@{APP}/open/whoami.json", host=PORTAL),
    request("https://evil.example/x/whoami.json"),
    request(f"https://{PORTAL}/open/whoami.json"),
    request("/x/whoami.json", host="HR.City.Test"),
    request("/x/whoami.json", host=f"{APP}."),
    request("/x/whoami.json", host=f"{APP}:8443"),
    request("/x/whoami.json", host="evil.example"),
    request("/x/whoami.json", host=""),
    request("/open/whoami.json", extra=f"Host: {PORTAL}\r\n"),
    request("/open/whoami.json", host=f"{PORTAL}, {APP}"),
    request("/x/whoami.json", extra=f"X-Forwarded-Host: {PORTAL}\r\nX-Original-URI: /open/\r\n"
            "X-Forwarded-Uri: /open/\r\nX-Forwarded-For: 10.0.0.1\r\nRemote-User: admin\r\n"
            "Forwarded: host=localhost;for=10.0.0.1\r\nX-Original-Method: GET\r\n"),
    b"CONNECT hr.city.test:443 HTTP/1.1\r\nHost: hr.city.test:443\r\nCookie: {cookie}\r\n\r\n",
    b"OPTIONS * HTTP/1.1\r\nHost: hr.city.test\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n",
    b"GET /x/whoami.json HTTP/1.0\r\nCookie: {cookie}\r\n\r\n",
]


@pytest.mark.parametrize("raw", HOST_ATTACKS, ids=range(len(HOST_ATTACKS)))
def test_host_tricks_are_judged_as_served_or_refused(stack: Stack, raw: bytes) -> None:
    for outcome in both(stack, raw):
        if outcome.served is not None:
            assert outcome.served["host"] == APP
            assert (outcome.served.get("remote_user") or outcome.served.get("headers", {})
                    .get("Remote-User")) == "alice"


def test_a_portal_sni_does_not_change_the_judged_host(stack: Stack) -> None:
    both(stack, request(f"https://{APP}/open/whoami.json", host=PORTAL, cookie=False),
         sni=PORTAL)


# -- finding 2: the path ----------------------------------------------------------------
PATH_ATTACKS = [
    "/admin;x/whoami.json", "/admin;jsessionid=1/whoami.json", "/forbidden;x/whoami.json",
    "/forbidden%3bx/whoami.json", "/forbidden%3Bx/whoami.json", "/public/..;/forbidden/whoami.json",
    "/public/%2e%2e;/forbidden/whoami.json", "/public/.%2e;/admin/whoami.json",
    "/public/%2e%2e/forbidden/whoami.json", "/public/../forbidden/whoami.json",
    "/public//../forbidden/whoami.json", "//forbidden/whoami.json", "/x//forbidden/whoami.json",
    "/x/./whoami.json", "/%2e/forbidden/whoami.json", "/public/..%2fforbidden/whoami.json",
    "/forbidden%2fwhoami.json", "/public/..\\forbidden/whoami.json",
    "/public/..%5cforbidden/whoami.json", "/FORBIDDEN/whoami.json", "/Admin/whoami.json",
    "/%61dmin/whoami.json", "/%66orbidden/whoami.json", "/public/..%c0%afforbidden/whoami.json",
    "/public/%c0%ae%c0%ae/forbidden/whoami.json", "/caf%C3%A9/whoami.json",
    "/x%20y/whoami.json", "/x/%FF/whoami.json", "/x%00/whoami.json", "/x%252e/whoami.json",
    "/public%2f..%2fforbidden/whoami.json", "/public/x/..", "/forbidden./whoami.json",
    "/public;/whoami.json", "/x/whoami.json;x", "/x/whoami.json?a=/../forbidden;x",
]


@pytest.mark.parametrize("path", PATH_ATTACKS)
def test_path_tricks_are_judged_as_served_or_refused(stack: Stack, path: str) -> None:
    outcomes = both(stack, request(path))
    if ";" in path.split("?")[0] or "%3b" in path.lower():
        assert all(o.served is None for o in outcomes), path


def test_client_sent_x_original_uri_changes_nothing(stack: Stack) -> None:
    raw = request("/forbidden/whoami.json", extra="X-Original-URI: /public/\r\n")
    for outcome in both(stack, raw):
        assert outcome.status == 403 and outcome.audited[0]["path"] == "/forbidden/whoami.json"


def test_generated_paths_against_real_tomcat(stack: Stack) -> None:
    """A sample of the property test's paths (tests/policy/test_path_rule.py), sent through
    nginx to the real Tomcat: refused, or served exactly as judged."""
    parts = ["a", "admin", "forbidden", "public", ".", "..", "", ";", ";x", "%2e", "%2e%2e",
             "%3b", "%2f", "%5c", "\\", "%00", "%25", "%c0%af", "%C3%A9", "%20", "%41", "~"]
    rng = random.Random(14)
    tomcat = stack.fronts[1]
    for _ in range(40):
        segments = ["".join(rng.choices(parts, k=rng.randint(0, 3)))
                    for _ in range(rng.randint(1, 4))]
        raw = fill(request("/" + "/".join(segments) + "/whoami.json"), stack)
        assert_judged_as_served(stack, tomcat, raw)


@pytest.mark.parametrize("header", ["User-Agent: probe\x01tool\r\n",
                                    "User-Agent: probe\x7f\r\n",
                                    "X-Probe: x\r\nCookie: a=b\x1bc\r\n"])
def test_a_control_character_in_a_header_is_refused_and_audited(stack: Stack,
                                                                  header: str) -> None:
    """Pen test #14.5: gunicorn answers 400 to such a header, which auth_request made an
    unaudited 500. The template hands authgate a clean value and says what was wrong."""
    raw = request("/whoami.json", cookie=False, extra=header)
    for outcome in both(stack, raw):
        assert outcome.status == 403
        [record] = outcome.audited
        assert record["reason"] == "control_character_in_header"


@pytest.mark.parametrize("header", [
    "Cookie: a=" + "x" * 8180 + "\r\n",                                   # one cookie, ~8 KB
    "Cookie: a=" + "x" * 5000 + "\r\nCookie: b=" + "y" * 5000 + "\r\n",   # nginx joins them
    "User-Agent: " + "u" * 8178 + "\r\n",
])
def test_an_oversized_header_nginx_forwards_is_decided_and_audited(stack: Stack,
                                                                   header: str) -> None:
    """Outside test of issue 20: nginx forwards header lines up to 8 KB and joins several
    Cookie headers into one, but gunicorn refused any line over 8190 bytes with 431, which
    auth_request turned into an unaudited 500. The verify pool now takes what nginx can
    send: the request is decided (anonymous here) and audited like any other."""
    raw = request("/whoami.json", cookie=False, extra=header)
    for front in stack.fronts:
        got = send(stack, front, raw)
        assert got.status in (302, 401, 403), (front.name, got.status)
        [record] = got.audited
        assert record["event"] == "verify" and record["outcome"] in ("challenge", "deny")


def test_an_oversized_original_uri_is_decided_and_audited(stack: Stack) -> None:
    """The request target as long as nginx takes it (8 KB buffers) reaches /verify as
    X-Original-URI: decided and audited, never a 500."""
    target = "/public/" + "a" * (8175 - len("/public/"))
    for front in stack.fronts:
        got = send(stack, front, fill(request(target), stack))
        assert got.status != 500 and got.status < 500, (front.name, got.status)
        if got.status != 414:  # nginx's own refusal of a too long line: nothing to audit
            [record] = got.audited
            assert record["event"] == "verify"


@pytest.mark.parametrize("header", ["X-Forwarded-Ssl: off", "X-Forwarded-Protocol: plain"])
def test_a_client_scheme_header_never_contradicts_the_proxys(stack: Stack, header: str) -> None:
    """Outside test of issue 20: gunicorn trusts X-Forwarded-Ssl and X-Forwarded-Protocol
    from the proxy as well as X-Forwarded-Proto; a client that sent one that disagreed got
    gunicorn's unaudited 400 ("Contradictory scheme headers") from the portal. The
    template clears them, so the page is served."""
    raw = request("/login", host=PORTAL, cookie=False, extra=header + "\r\n")
    for front in stack.fronts:
        status, _response = raw_https(front.port, raw, stack.tls.ca_cert, sni=PORTAL)
        assert status == 200, (front.name, header, status)
