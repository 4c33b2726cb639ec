"""Issue 18 item 3: Caddy (Debian's ``caddy`` 2.6) in front of the sample app, proven like nginx.

Caddy runs the SHIPPED ``deploy/caddy/Caddyfile.template`` (only its placeholders filled) on a
free port, with the portal ``localhost`` and the protected app ``hr.city.test`` on the same
port as in production; ``authgate serve`` in production mode behind it, with the attack
policy of tests/integration/test_bypass.py. What the nginx suites prove is proven here: allow,
login redirect with the exact return URL, deny, client-sent identity and forwarded headers
change nothing, the judged host and path are the ones the app served (the same host and path
attacks), ``/verify`` unreachable from outside, and the gateway down fails closed.

The Traefik configuration in docs/deployment.md is checked against Traefik's documented
forwardAuth contract (doc.traefik.io, "ForwardAuth": X-Forwarded-Method, -Proto, -Host, -Uri,
-For; ``trustForwardHeader``; ``authResponseHeaders``; ``authRequestHeaders``). Debian has no
Traefik binary, so the gateway is sent exactly those headers the way Traefik sends them.
"""
from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote

import pytest
import requests
import yaml

from tests.integration.harness import (
    ROOT,
    Browser,
    Proc,
    TlsFiles,
    free_port,
    make_tls,
    raw_https,
    render_nginx,
    start_authgate,
    start_gunicorn,
    stop,
    wait_until,
    write_authgate_config,
)
from tests.integration.test_bypass import (
    APP,
    HOST_ATTACKS,
    PASSWORD,
    PATH_ATTACKS,
    PORTAL,
    _authgate,
    _policies,
    request,
)

pytestmark = pytest.mark.integration

CADDY_TEMPLATE = ROOT / "deploy" / "caddy" / "Caddyfile.template"
COOKIE = "__Host-authgate_session"
UUID = rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
IDENTITY = {"Remote-User", "Remote-Groups", "Remote-Name", "Remote-Email"}


def caddy_binary() -> str:
    found = shutil.which("caddy") or ("/usr/bin/caddy" if os.access("/usr/bin/caddy", os.X_OK)
                                      else None)
    if found is None:
        raise RuntimeError("caddy is not installed: `apt-get install -y caddy` (scripts/"
                           "install-system-deps.sh does); this test needs the real thing")
    return found


def start_caddy(values: dict[str, object], ca_file: Path) -> Proc:
    """``caddy run`` on the rendered template from its own directory (storage, log, HOME)."""
    prefix = Path(tempfile.mkdtemp(prefix="authgate-caddy-"))
    conf = prefix / "Caddyfile"
    conf.write_text(render_nginx(CADDY_TEMPLATE, {"PREFIX": prefix, **values}), "utf-8")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(prefix), "XDG_DATA_HOME": str(prefix),
           "XDG_CONFIG_HOME": str(prefix)}
    log = prefix / "caddy.stderr.log"
    with open(log, "ab") as out:
        popen = subprocess.Popen([caddy_binary(), "run", "--config", str(conf), "--adapter",
                                  "caddyfile"], stdout=out, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL, cwd=prefix, env=env,
                                 start_new_session=True)
    proc = Proc("caddy", popen, log, extra={"prefix": prefix})
    url = f"https://localhost:{values['PORT']}/healthz"

    def probe() -> bool:  # only our Caddyfile answers the portal with a request id
        r = requests.get(url, verify=str(ca_file), timeout=2, allow_redirects=False)
        return r.text.strip() == "ok" and bool(re.fullmatch(UUID.decode(), r.headers.get(
            "X-Request-ID", "")))

    wait_until(probe, proc)
    return proc


@dataclass
class Stack:
    tls: TlsFiles
    db: Path
    port: int
    verify_port: int
    env: dict[str, str]
    run_dir: Path
    procs: dict[str, Proc]
    cookie: str

    def audit(self, rid: str) -> list[sqlite3.Row]:
        with sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=10) as conn:
            conn.row_factory = sqlite3.Row
            return conn.execute("SELECT * FROM audit_events WHERE request_id = ? AND "
                                "event = 'verify'", (rid,)).fetchall()

    @property
    def portal(self) -> str:
        return f"https://{PORTAL}:{self.port}"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    run_dir = tmp_path_factory.mktemp("authgate-caddy")
    ports: set[int] = set()
    while len(ports) < 4:
        ports.add(free_port())
    gateway_port, verify_port, upstream_port, port = sorted(ports)
    config = write_authgate_config(
        run_dir, public_url=f"https://{PORTAL}:{port}",
        server={"protected_domains": [PORTAL, APP]},
        policy={"path": str(_policies(run_dir)), "require_approval": False})
    env = {"AUTHGATE_CONFIG": str(config)}
    _authgate(env, "db", "upgrade")
    _authgate(env, "users", "add", "alice", "--password-stdin", "--group", "City-Staff",
              "--name", "Alice Liddell", "--email", "alice@city.test", stdin=PASSWORD + "\n")
    tls = make_tls(run_dir / "tls", names=(APP,))
    procs: dict[str, Proc] = {}
    try:
        procs["authgate"] = start_authgate(env, portal_port=gateway_port,
                                           verify_port=verify_port, run_dir=run_dir)
        procs["upstream"] = start_gunicorn(
            "authgate.demo.sample_app:app", upstream_port,
            {"GUNICORN_CMD_ARGS": "--access-logformat='%({x-request-id}i)s'"},
            run_dir=run_dir, name="upstream", ready_path="/ready/whoami.json",
            ready=lambda r: r.status_code == 200 and r.json().get("app") == "sample")
        procs["caddy"] = start_caddy({
            "BIND": "127.0.0.1 ::1", "APP_HOST": APP, "PORTAL_HOST": PORTAL, "PORT": port,
            "GATEWAY_PORT": gateway_port, "VERIFY_PORT": verify_port,
            "UPSTREAM_PORT": upstream_port, "TLS_CERT": tls.cert, "TLS_KEY": tls.key,
        }, tls.ca_cert)
        browser = Browser(tls.ca_cert)
        rd = quote(f"https://{APP}:{port}/start", safe="")
        done = browser.login(f"https://{PORTAL}:{port}/login?rd={rd}", "alice", PASSWORD)
        assert done.status_code == 303 and COOKIE in browser.cookies, done.text[:300]
        yield Stack(tls, run_dir / "authgate.db", port, verify_port, env, run_dir, procs,
                    browser.cookies[COOKIE])
    finally:
        for proc in reversed(list(procs.values())):
            stop(proc)
            if "prefix" in proc.extra:
                shutil.rmtree(proc.extra["prefix"], ignore_errors=True)


# -- sending and the invariant (as tests/integration/test_bypass.py) -------------------
@dataclass
class Seen:
    status: int
    rid: str
    head: bytes
    served: dict[str, object] | None
    audited: list[sqlite3.Row]


def send(stack: Stack, raw: bytes, sni: str = APP) -> Seen:
    raw = raw.replace(b"{cookie}", f"{COOKIE}={stack.cookie}".encode())
    try:
        status, response = raw_https(stack.port, raw, stack.tls.ca_cert, sni=sni)
    except TimeoutError:  # Caddy never answers (CONNECT): nothing served either
        return Seen(0, "", b"", None, [])
    head, _, body = response.partition(b"\r\n\r\n")
    match = re.search(rb"\r\nX-Request-ID: (" + UUID + rb")", head, re.IGNORECASE)
    rid = match.group(1).decode() if match else ""
    served = None
    if status == 200 and body.lstrip().startswith(b"{"):
        import json

        served = json.loads(body)
    return Seen(status, rid, head, served, stack.audit(rid) if rid else [])


def reached(stack: Stack, rid: str) -> bool:
    log = Path(stack.procs["upstream"].extra["access_log"])
    return bool(rid) and rid in log.read_text(encoding="utf-8", errors="replace")


def judged_as_served(stack: Stack, raw: bytes, sni: str = APP) -> Seen:
    """The host and path in the audit decision are the ones the app served, or the request
    was refused and the app never saw it."""
    got = send(stack, raw, sni)
    if got.served is None and got.status == 200:  # Go's own answer to OPTIONS *: empty
        assert raw.startswith(b"OPTIONS * ") and b"Content-Length: 0" in got.head
        return got
    if got.served is None:
        assert 400 <= got.status < 500 or got.status in (0, 302), (raw[:120], got.status)
        assert not reached(stack, got.rid), ("the upstream saw a refused request", raw[:120])
        return got
    [record] = got.audited
    assert record["outcome"] == "allow", raw[:120]
    # host names compare case-insensitively (RFC 3986 3.2.2): Caddy passes Host as sent
    assert (record["host"], unquote(record["path"])) == (str(got.served["host"]).lower(),
                                                         got.served["path"]), \
        (raw[:120], dict(record), got.served)
    return got


# -- the flow --------------------------------------------------------------------------
def test_login_redirect_keeps_the_exact_url_and_the_app_sees_alice(stack: Stack) -> None:
    original = f"https://{APP}:{stack.port}/some/whoami.json?a=1&b=2&c=%20x"
    anonymous = send(stack, request("/some/whoami.json?a=1&b=2&c=%20x", cookie=False))
    assert anonymous.status == 302 and anonymous.served is None
    location = re.search(rb"\r\nLocation: ([^\r]*)", anonymous.head, re.IGNORECASE)
    assert location is not None
    assert location.group(1).decode() == f"{stack.portal}/login?rd={quote(original, safe='')}"
    [record] = anonymous.audited
    assert (record["outcome"], record["host"], record["path"]) == \
        ("challenge", APP, "/some/whoami.json")

    browser = Browser(stack.tls.ca_cert)
    back = browser.login(location.group(1).decode(), "alice", PASSWORD)
    assert back.status_code == 303 and back.headers["Location"] == original
    cookie = browser.cookies[COOKIE]
    page = send(stack, request("/some/whoami.json?a=1&b=2&c=%20x", cookie=False,
                               extra=f"Cookie: {COOKIE}={cookie}\r\n"))
    assert page.status == 200 and page.served is not None
    assert page.served["query"] == "a=1&b=2&c=%20x"
    assert page.served["headers"] == {"Remote-User": "alice", "Remote-Groups": "City-Staff",
                                      "Remote-Name": "Alice Liddell",
                                      "Remote-Email": "alice@city.test"}
    [record] = page.audited
    assert (record["outcome"], record["username"]) == ("allow", "alice")
    assert record["client_ip"] in ("127.0.0.1", "::1")


def test_public_is_open_forbidden_denied_admin_steps_up(stack: Stack) -> None:
    public = send(stack, request("/public/whoami.json", cookie=False))
    assert public.status == 200 and public.served is not None
    for cookie in (False, True):
        denied = send(stack, request("/forbidden/whoami.json", cookie=cookie))
        assert denied.status == 403 and denied.served is None
        assert not reached(stack, denied.rid)
        assert denied.audited[0]["outcome"] == "deny"
    step_up = send(stack, request("/admin/whoami.json"))  # alice holds password only
    assert step_up.status == 302 and step_up.audited[0]["outcome"] == "challenge"


def test_client_sent_identity_and_forwarded_headers_change_nothing(stack: Stack) -> None:
    forged = ("Remote-User: mallory\r\nRemote-Groups: authgate-admins\r\n"
              "Remote-Identity: forged\r\nX-Forwarded-For: 203.0.113.66\r\n"
              "X-Forwarded-Host: localhost\r\nX-Original-URI: /public/\r\n"
              "X-Original-Method: GET\r\nX-Forwarded-Uri: /public/\r\n"
              "X-Forwarded-Proto: http\r\nX-Forwarded-Port: 1\r\n"
              "X-Request-ID: forged-request-id\r\n")
    mine = judged_as_served(stack, request("/forge/whoami.json", extra=forged))
    assert mine.served is not None and mine.served["headers"]["Remote-User"] == "alice"  # type: ignore[index]
    assert mine.served["headers"]["Remote-Groups"] == "City-Staff"  # type: ignore[index]
    assert mine.audited[0]["client_ip"] in ("127.0.0.1", "::1")
    assert mine.audited[0]["path"] == "/forge/whoami.json"
    assert not stack.audit("forged-request-id")

    anonymous = send(stack, request("/forge/whoami.json", cookie=False, extra=forged))
    assert anonymous.status == 302 and not reached(stack, anonymous.rid)
    assert anonymous.audited[0]["username"] == ""

    public = send(stack, request("/public/whoami.json", cookie=False, extra=forged))
    assert public.status == 200 and public.served is not None
    assert all(not v for v in public.served["headers"].values()), public.served["headers"]  # type: ignore[union-attr,index]

    denied = send(stack, request("/forbidden/whoami.json", extra=forged))
    assert denied.status == 403 and denied.audited[0]["path"] == "/forbidden/whoami.json"


@pytest.mark.parametrize("raw", HOST_ATTACKS, ids=range(len(HOST_ATTACKS)))
def test_host_tricks_are_judged_as_served_or_refused(stack: Stack, raw: bytes) -> None:
    seen = judged_as_served(stack, raw)
    if seen.served is not None:
        assert str(seen.served["host"]).lower() == APP
        assert seen.served["headers"]["Remote-User"] == "alice"  # type: ignore[index]


def test_a_portal_sni_does_not_change_the_judged_host(stack: Stack) -> None:
    judged_as_served(stack, request(f"https://{APP}/open/whoami.json", host=PORTAL,
                                    cookie=False), sni=PORTAL)


@pytest.mark.parametrize("path", PATH_ATTACKS)
def test_path_tricks_are_judged_as_served_or_refused(stack: Stack, path: str) -> None:
    seen = judged_as_served(stack, request(path))
    if ";" in path.split("?")[0] or "%3b" in path.lower():
        assert seen.served is None, path


def test_unknown_hosts_and_verify_are_refused(stack: Stack) -> None:
    unknown = send(stack, request("/public/whoami.json", host="evil.example", cookie=False))
    assert unknown.status == 421 and unknown.served is None
    for path in ("/verify", "/verify/", "/verify?x=1", "/VERIFY"):
        seen = send(stack, request(path, host=PORTAL, extra="X-Forwarded-Uri: /x\r\n"
                                   "X-Forwarded-Proto: https\r\n"), sni=PORTAL)
        assert seen.status in (302, 404) and b"Remote-User" not in seen.head, \
            (path, seen.status)


# -- Traefik: the documented forwardAuth headers, sent as Traefik sends them ------------
def _traefik_config() -> dict[str, object]:
    text = (ROOT / "docs" / "deployment.md").read_text(encoding="utf-8")
    section = text[text.index("### Traefik"):]
    block = re.search(r"```yaml\n(.*?)```", section, re.DOTALL)
    assert block is not None, "docs/deployment.md: no Traefik yaml block"
    return yaml.safe_load(block.group(1))  # type: ignore[no-any-return]


def _traefik(stack: Stack, uri: str, *, method: str = "GET", cookie: bool = True,
             **override: str) -> requests.Response:
    """One forwardAuth call: the headers Traefik documents, and with ``authRequestHeaders``
    (as docs/deployment.md configures it) only Cookie and User-Agent of the client's."""
    headers = {"X-Forwarded-Method": method, "X-Forwarded-Proto": "https",
               "X-Forwarded-Host": APP, "X-Forwarded-Uri": uri,
               "X-Forwarded-For": "203.0.113.9", "User-Agent": "traefik-test/1"}
    if cookie:
        headers["Cookie"] = f"{COOKIE}={stack.cookie}"
    headers.update(override)
    return requests.get(f"http://127.0.0.1:{stack.verify_port}/verify",
                        headers={k: v for k, v in headers.items() if v}, timeout=10,
                        allow_redirects=False)


def test_the_documented_traefik_configuration_matches_traefiks_contract(stack: Stack) -> None:
    config = _traefik_config()
    middlewares = config["http"]["middlewares"]  # type: ignore[index]
    auth = middlewares["authgate"]["forwardAuth"]
    assert auth["address"].endswith("/verify")
    assert auth["trustForwardHeader"] is False  # Traefik sets X-Forwarded-*, not the client
    assert set(auth["authRequestHeaders"]) == {"Cookie", "User-Agent"}  # no X-Original-*
    stripped = set(middlewares["strip-identity"]["headers"]["customRequestHeaders"])
    assert set(auth["authResponseHeaders"]) == stripped
    router = next(iter(config["http"]["routers"].values()))  # type: ignore[index]
    assert router["middlewares"] == ["strip-identity", "authgate"]

    allowed = _traefik(stack, "/t/whoami.json?x=1")
    assert allowed.status_code == 200
    sent = {h for h in allowed.headers if h.startswith("Remote-")}
    assert IDENTITY <= sent <= set(auth["authResponseHeaders"]), sent
    assert allowed.headers["Remote-User"] == "alice"


def test_the_gateway_judges_traefiks_headers(stack: Stack) -> None:
    login = _traefik(stack, "/t/whoami.json?a=1&b=2", cookie=False)
    assert login.status_code == 302  # no X-Original-URI: the redirect itself, for Traefik
    assert login.headers["Location"] == (
        f"{stack.portal}/login?rd={quote(f'https://{APP}/t/whoami.json?a=1&b=2', safe='')}")
    assert _traefik(stack, "/forbidden/x").status_code == 403
    assert _traefik(stack, "/public/x", cookie=False).status_code == 200
    posted = _traefik(stack, "/t/form", method="POST", **{"X-Request-ID": "traefik-post-1"})
    assert posted.status_code == 200
    [record] = stack.audit("traefik-post-1")
    assert (record["method"], record["host"], record["path"], record["client_ip"]) == \
        ("POST", APP, "/t/form", "203.0.113.9")
    # without any one of the headers the request cannot be known: never allowed
    for missing in ("X-Forwarded-Proto", "X-Forwarded-Host", "X-Forwarded-Uri"):
        refused = _traefik(stack, "/t/x", **{missing: ""})
        assert refused.status_code in (400, 401, 403), (missing, refused.status_code)
        assert "Remote-User" not in refused.headers


# -- failing closed (last: it stops the gateway, then brings it back) ------------------
def test_gateway_down_fails_closed(stack: Stack) -> None:
    stop(stack.procs["authgate"])
    try:
        for raw in (request("/down/whoami.json"), request("/down/x", cookie=False),
                    request("/public/whoami.json", cookie=False)):
            seen = send(stack, raw)
            assert seen.status >= 500 and seen.served is None, (raw[:60], seen.status)
            assert not reached(stack, seen.rid)
    finally:
        stack.procs["authgate"] = start_authgate(
            stack.env, portal_port=stack.procs["authgate"].extra["portal_port"],
            verify_port=stack.verify_port, run_dir=stack.run_dir)
    back = send(stack, request("/down/whoami.json"))
    assert back.served is not None and back.served["headers"]["Remote-User"] == "alice"  # type: ignore[index]
