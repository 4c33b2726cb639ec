"""Real servers for the integration tests: gunicorn, nginx, a test CA, and a tiny browser.

Everything listens on loopback, on ports picked at run time; a service counts as ready only
when it answers with something only it says (real-components.md). Processes are started in
their own process group and ``stop()`` kills exactly that group, never anything by name.
Missing binaries fail loudly: these tests never skip.
"""
from __future__ import annotations

import datetime as dt
import ipaddress
import os
import re
import shutil
import signal
import socket
import ssl
import string
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.cookiejar import DefaultCookiePolicy
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlparse

import requests

from tests.fixtures.net import CSRF_FIELD
from tests.fixtures.net import (
    free_port as free_port,  # re-exported for the suites that start servers
)

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
NGINX_TEMPLATE = ROOT / "deploy" / "nginx" / "authgate.conf.template"
TEST_POLICIES = ROOT / "tests" / "policies"  # the suite's policy set (tests/conftest.py)




# -- processes ---------------------------------------------------------------------------
@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    pid_file: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def log_text(self) -> str:
        try:
            return self.log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    @property
    def running(self) -> bool:
        return self.popen.poll() is None


def stop(proc: Proc | None, timeout: float = 10.0) -> None:
    """Terminate the process group we started (gunicorn master and workers, nginx master and
    workers), then make sure: SIGKILL if it lingers. Idempotent."""
    if proc is None or proc.popen.poll() is not None:
        return
    pgid = proc.popen.pid  # started with start_new_session=True: pgid == pid
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        try:
            proc.popen.wait(wait)
        except subprocess.TimeoutExpired:
            continue
        # the master is gone; reap stragglers of the same group (workers) quietly
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        return


def _spawn(name: str, args: list[str], log: Path, env: Mapping[str, str] | None = None,
           cwd: Path | None = None) -> subprocess.Popen[bytes]:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, cwd=cwd, start_new_session=True,
                                env=dict(env) if env is not None else None)


def wait_until(probe: Callable[[], bool], proc: Proc, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.running:
            raise RuntimeError(f"{proc.name} exited with {proc.popen.returncode} before it was "
                               f"ready; log:\n{proc.log_text()[-4000:]}")
        try:
            if probe():
                return
        except (requests.RequestException, OSError):
            pass
        time.sleep(0.05)
    stop(proc)
    raise RuntimeError(f"{proc.name} not ready after {timeout}s; log:\n{proc.log_text()[-4000:]}")


def start_gunicorn(app_spec: str, port: int, env: Mapping[str, str], workers: int = 2, *,
                   run_dir: Path, name: str = "gunicorn",
                   ready: Callable[[requests.Response], bool] | None = None,
                   ready_path: str = "/healthz") -> Proc:
    """gunicorn with sync workers on 127.0.0.1:port, cwd = the repository (``wsgi:app``).

    Ready when ``GET ready_path`` satisfies ``ready`` (default: the body is ``ok``, which is
    what authgate's /healthz says)."""
    gunicorn = shutil.which("gunicorn", path=str(VENV_BIN)) or shutil.which("gunicorn")
    if gunicorn is None:
        raise RuntimeError("gunicorn is not installed (pip install -e .[test])")
    run_dir.mkdir(parents=True, exist_ok=True)
    pid_file = run_dir / f"{name}.pid"
    log = run_dir / f"{name}.log"
    args = [gunicorn, "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
            "--worker-class", "sync", "--no-control-socket", "--pid", str(pid_file),
            "--chdir", str(ROOT), "--access-logfile", str(run_dir / f"{name}.access.log"),
            "--error-logfile", "-", "--capture-output", "--graceful-timeout", "5",
            app_spec]
    full_env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
    proc = Proc(name, _spawn(name, args, log, full_env, cwd=ROOT), log, pid_file,
                extra={"access_log": run_dir / f"{name}.access.log"})
    check = ready or (lambda r: r.status_code == 200 and r.text.strip() == "ok")
    url = f"http://127.0.0.1:{port}{ready_path}"
    wait_until(lambda: check(requests.get(url, timeout=1)), proc)
    return proc


def start_authgate(env: Mapping[str, str], *, portal_port: int, verify_port: int,
                   run_dir: Path, workers: int = 2, threads: int = 16,
                   name: str = "authgate", extra: tuple[str, ...] = (),
                   portal_nice: int | None = 0) -> Proc:
    """The gateway as deployed: ``authgate serve`` (docs/deployment.md), i.e. the portal pool
    on ``portal_port`` and the forward-auth pool on ``verify_port`` under one supervising
    process; nginx's template routes ``auth_request`` to ``VERIFY_PORT``. Ready when both
    answer ``/healthz``. ``stop()`` ends the supervisor and both pools (one process group).
    ``extra["access_log"]`` is the access log both pools write. ``portal_nice``: the suite
    shares two cores with Chromium and Samba at niceness 0, so its portal runs at 0 too;
    None keeps ``authgate serve``'s deployed default (19), which benchmarks/availability.py
    measures and tests/integration/test_serve_pools.py checks."""
    authgate = shutil.which("authgate", path=str(VENV_BIN)) or shutil.which("authgate")
    if authgate is None:
        raise RuntimeError("the authgate command is not installed (pip install -e .[test])")
    run_dir.mkdir(parents=True, exist_ok=True)
    access, log = run_dir / f"{name}.access.log", run_dir / f"{name}.log"
    args = [authgate, "serve", "--bind", f"127.0.0.1:{portal_port}",
            "--verify-bind", f"127.0.0.1:{verify_port}", "--workers", str(workers),
            "--threads", str(threads), "--verify-workers", str(workers),
            "--access-logfile", str(access),
            *(("--portal-nice", str(portal_nice)) if portal_nice is not None else ()), *extra]
    full_env = {**os.environ, **env, "PYTHONUNBUFFERED": "1",
                "PYTHONPATH": os.pathsep.join(filter(None, (str(ROOT),
                                                            os.environ.get("PYTHONPATH"))))}
    proc = Proc(name, _spawn(name, args, log, full_env, cwd=ROOT), log,
                extra={"access_log": access, "portal_port": portal_port,
                       "verify_port": verify_port})
    for port in (verify_port, portal_port):
        url = f"http://127.0.0.1:{port}/healthz"
        wait_until(lambda u=url: requests.get(u, timeout=1).text.strip() == "ok", proc)  # type: ignore[misc]
    return proc


# -- TLS ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class TlsFiles:
    ca_cert: Path
    cert: Path
    key: Path


def make_tls(directory: Path, names: tuple[str, ...] = ()) -> TlsFiles:
    """A throwaway CA and a server certificate for localhost, 127.0.0.1, ::1 and ``names``
    (with the extensions Python's strict X.509 verification expects)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "authgate test CA")])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - dt.timedelta(minutes=5))
          .not_valid_after(now + dt.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False,
                                       encipher_only=False, decipher_only=False), critical=True)
          .add_extension(ca_ski, critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), *(x509.DNSName(name) for name in names),
                x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                x509.IPAddress(ipaddress.ip_address("::1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
                           critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    tls = TlsFiles(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    tls.ca_cert.write_bytes(ca.public_bytes(pem))
    tls.cert.write_bytes(leaf.public_bytes(pem) + ca.public_bytes(pem))
    tls.key.write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    tls.key.chmod(0o600)
    return tls


# -- nginx -------------------------------------------------------------------------------
def nginx_binary() -> str:
    found = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None)
    if found is None:
        raise RuntimeError("nginx is not installed: `apt-get install -y nginx` (make test does); "
                           "the integration tests need the real thing and never skip")
    return found


def make_prefix() -> Path:
    """A prefix dir nginx workers (an unprivileged user) can traverse: pytest's tmp dirs
    are 0700 root, so nginx gets its own world-traversable directory under the temp dir."""
    prefix = Path(tempfile.mkdtemp(prefix="authgate-nginx-"))
    prefix.chmod(0o755)
    (prefix / "temp").mkdir()
    return prefix


def render_nginx(template: Path, values: Mapping[str, object]) -> str:
    """``string.Template`` substitution; every placeholder must be given (nginx's own
    ``$variables`` are left alone because they are not in ``values``)."""
    text = template.read_text(encoding="utf-8")
    wanted = set(re.findall(r"\$\{([A-Z0-9_]+)\}", text))
    missing = wanted - set(values)
    if missing:
        raise KeyError(f"nginx template placeholders without a value: {sorted(missing)}")
    return string.Template(text).safe_substitute({k: str(v) for k, v in values.items()})


def start_nginx(template: Path, values: Mapping[str, object], prefix: Path, *,
                ready_url: str, ca_file: Path) -> Proc:
    """nginx in the foreground from ``prefix`` (own pid, logs and temp paths; ``-e stderr``
    so nothing is written to /var/log). Ready when ``ready_url`` answers with the
    ``X-Request-ID`` header only our configuration adds."""
    binary = nginx_binary()
    conf = prefix / "nginx.conf"
    conf.write_text(render_nginx(template, {"PREFIX": prefix, **values}), encoding="utf-8")
    log = prefix / "nginx.stderr.log"
    base = [binary, "-p", str(prefix), "-c", str(conf), "-e", "stderr"]
    check = subprocess.run([*base, "-t"], capture_output=True, text=True)
    if check.returncode != 0:
        raise RuntimeError(f"nginx -t failed:\n{check.stderr}\n--- config ---\n{conf.read_text()}")
    popen = _spawn("nginx", [*base, "-g", "daemon off;"], log)
    proc = Proc("nginx", popen, log, prefix / "nginx.pid")

    def probe() -> bool:
        r = requests.get(ready_url, verify=str(ca_file), allow_redirects=False, timeout=2)
        return bool(re.fullmatch(r"[0-9a-f]{32}", r.headers.get("X-Request-ID", "")))

    wait_until(probe, proc)
    return proc


# -- a tiny browser ----------------------------------------------------------------------
class _NoCookies(DefaultCookiePolicy):
    """requests must not keep cookies itself: the Browser does (see its docstring)."""

    def set_ok(self, cookie: Any, request: Any) -> bool:
        return False

    def return_ok(self, cookie: Any, request: Any) -> bool:
        return False


_CSRF = CSRF_FIELD


class Browser:
    """An HTTP client that behaves like a browser on ``localhost``, no more.

    Cookies: one jar for every ``localhost:*`` origin (browsers ignore ports), sent whatever
    the scheme (browsers treat localhost as secure), updated from each ``Set-Cookie`` and
    removed on ``Max-Age=0`` or a past ``Expires``. ``http.cookiejar`` does neither reliably
    for ``localhost``, hence the manual jar. Redirects are never followed automatically: a
    test sees every 302/303 and follows it with ``follow()``.
    """

    def __init__(self, ca_file: Path, user_agent: str = "authgate-integration-test/1") -> None:
        self.ca_file = str(ca_file)
        self.cookies: dict[str, str] = {}
        self.session = requests.Session()
        self.session.trust_env = False
        self.session.cookies.set_policy(_NoCookies())
        self.session.headers["User-Agent"] = user_agent
        self.login_chain: list[requests.Response] = []

    def close(self) -> None:
        self.session.close()

    def cookie_header(self) -> str:
        return "; ".join(f"{k}={v}" for k, v in self.cookies.items())

    def request(self, method: str, url: str, *, headers: Mapping[str, str] | None = None,
                cookies: bool = True, **kwargs: Any) -> requests.Response:
        sent = dict(headers or {})
        if cookies and self.cookies and "Cookie" not in sent:
            sent["Cookie"] = self.cookie_header()
        response = self.session.request(method, url, headers=sent, allow_redirects=False,
                                        verify=self.ca_file, timeout=15, **kwargs)
        self._store(response)
        return response

    def get(self, url: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> requests.Response:
        return self.request("POST", url, **kwargs)

    def follow(self, response: requests.Response) -> requests.Response:
        assert response.status_code in (301, 302, 303, 307, 308), response.status_code
        location = response.headers["Location"]
        target = urljoin(response.url, location)
        return self.get(target)

    def _store(self, response: requests.Response) -> None:
        for raw in response.raw.headers.getlist("Set-Cookie"):
            name, _, rest = raw.partition("=")
            value, _, attributes = rest.partition(";")
            attrs = attributes.lower()
            expired = re.search(r"max-age=0\b", attrs) or re.search(r"expires=[^;]*19[67]\d", attrs)
            if expired:
                self.cookies.pop(name.strip(), None)
            else:
                self.cookies[name.strip()] = value.strip()

    # -- the portal's forms, as a user fills them in ---------------------------------
    def csrf_token(self, url: str) -> str:
        page = self.get(url)
        assert page.status_code == 200, (url, page.status_code, page.text[:300])
        match = _CSRF.search(page.text)
        assert match, f"no csrf_token hidden input on {url}"
        return match.group(1)

    def login(self, login_url: str, username: str, password: str) -> requests.Response:
        """Open the login page (with its ``rd``), submit the form as it is rendered, and
        follow the portal's own redirects (``/login/next`` ...) as a browser would. Returns
        the portal's last answer: a redirect off the portal (back to the app), or a page
        (an error, a second-factor form). ``self.login_chain`` holds every response."""
        page = self.get(login_url)
        assert page.status_code == 200, (login_url, page.status_code, page.text[:300])
        token = _CSRF.search(page.text)
        rd = re.search(r'name="rd" value="([^"]*)"', page.text)
        assert token and rd is not None, "login form without csrf_token or rd"
        form = {"csrf_token": token.group(1), "rd": _unescape(rd.group(1)),
                "username": username, "password": password}
        action = urljoin(page.url, "/login")
        response = self.post(action, data=form)
        self.login_chain = [response]
        portal = _origin(page.url)
        for _ in range(10):
            if response.status_code not in (302, 303) or "Location" not in response.headers:
                break
            target = urljoin(response.url, response.headers["Location"])
            if _origin(target) != portal:
                break
            response = self.get(target)
            self.login_chain.append(response)
        return response

    def logout(self, portal: str) -> requests.Response:
        token = self.csrf_token(f"{portal}/logout")
        return self.post(f"{portal}/logout", data={"csrf_token": token})


def _origin(url: str) -> tuple[str, str]:
    parts = urlparse(url)
    return parts.scheme, parts.netloc


def _unescape(value: str) -> str:
    import html

    return html.unescape(value)


# -- raw requests (bytes requests refuses to send) --------------------------------------
def raw_https(port: int, request: bytes, ca_file: Path, host: str = "localhost",
              timeout: float = 5.0, sni: str | None = None) -> tuple[int, bytes]:
    """Send ``request`` bytes as-is over TLS to ``host`` (TLS server name ``sni``, default
    ``host``); return (status, whole response)."""
    context = ssl.create_default_context(cafile=str(ca_file))
    with socket.create_connection((host, port), timeout=timeout) as sock, \
            context.wrap_socket(sock, server_hostname=sni or host) as tls:
        tls.sendall(request)
        chunks = []
        while True:
            try:
                chunk = tls.recv(65536)
            except (ssl.SSLError, ConnectionResetError):
                break
            if not chunk:
                break
            chunks.append(chunk)
    data = b"".join(chunks)
    match = re.match(rb"HTTP/1\.[01] (\d{3})", data)
    return (int(match.group(1)) if match else 0), data


# -- authgate configuration for real servers ------------------------------------------------
def write_authgate_config(run_dir: Path, *, public_url: str, mode: str = "production",
                          storage_url: str | None = None, users_file: Path | None = None,
                          log_level: str = "INFO", **sections: dict[str, Any]) -> Path:
    """A config the way an operator writes one: real random secrets in 0600 files, a real
    encryption key, SQLite in ``run_dir`` unless ``storage_url`` says otherwise. ``sections``
    are merged into the matching top-level sections (e.g. ``webauthn={...}``)."""
    import base64
    import secrets as random

    import yaml

    secrets_dir = run_dir / "secrets"
    secrets_dir.mkdir(exist_ok=True)
    for name in ("session_key", "audit_key"):
        path = secrets_dir / name
        path.write_text(random.token_urlsafe(48) + "\n", encoding="utf-8")
        path.chmod(0o600)
    config: dict[str, Any] = {
        "mode": mode,
        "server": {"public_url": public_url, "trusted_proxies": ["127.0.0.1/32", "::1/128"],
                   "protected_domains": ["localhost"],
                   "allow_http_localhost": public_url.startswith("http://")},
        "storage": {"url": storage_url or f"sqlite:///{run_dir / 'authgate.db'}"},
        "directory": {"backend": "file",
                      "file": {"path": str(users_file or run_dir / "users.yaml")}},
        "policy": {"path": str(TEST_POLICIES),
                   "require_approval": False},
        "secrets": {"session_key_file": str(secrets_dir / "session_key"),
                    "audit_key_file": str(secrets_dir / "audit_key"),
                    "encryption_keys": [
                        "k1:" + base64.b64encode(random.token_bytes(32)).decode()]},
        "logging": {"level": log_level, "format": "text"},
    }
    for name, values in sections.items():
        config.setdefault(name, {}).update(values)
    path = run_dir / "authgate.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    path.chmod(0o600)  # it holds the encryption key
    return path


# -- several instances behind one nginx ------------------------------------------------------
def instances_template(directory: Path) -> Path:
    """The shipped nginx template with a second authgate instance in both upstreams (the
    way several instances are run: docs/deployment.md, "Several instances"), plus one
    portal server block per instance (``PORTAL_A_PORT`` → ``GATEWAY_PORT``, ``PORTAL_B_PORT``
    → ``GATEWAY_PORT_B``) so a test can choose which instance serves a login. Everything
    else is the shipped file verbatim; new placeholders: ``VERIFY_PORT_B``,
    ``GATEWAY_PORT_B``, ``PORTAL_A_PORT``, ``PORTAL_B_PORT``."""
    text = NGINX_TEMPLATE.read_text(encoding="utf-8")
    for port in ("VERIFY_PORT", "GATEWAY_PORT"):
        one = f"        server 127.0.0.1:${{{port}}};\n"
        if text.count(one) != 1:
            raise RuntimeError(f"the nginx template no longer has one upstream on {port}")
        text = text.replace(one, f"{one}        server 127.0.0.1:${{{port}_B}};\n")
    start = text.index("    server {\n        listen ${LISTEN_V4}:${PORTAL_PORT} ssl;")
    end = text.rstrip().rindex("}")
    portal = text[start:end]
    pinned = ("    upstream authgate_a {\n        server 127.0.0.1:${GATEWAY_PORT};\n    }\n"
              "    upstream authgate_b {\n        server 127.0.0.1:${GATEWAY_PORT_B};\n    }\n")
    for which in ("a", "b"):
        copy = portal.replace("${PORTAL_PORT}", f"${{PORTAL_{which.upper()}_PORT}}")
        pinned += copy.replace("proxy_pass http://authgate;", f"proxy_pass http://authgate_{which};")
    path = directory / "authgate-instances.conf.template"
    path.write_text(text[:end] + pinned + "}\n", encoding="utf-8")
    return path


def group_stats(pgid: int) -> dict[int, list[str]]:
    """``/proc/PID/stat`` of each process of a process group, its fields after the command
    name (``[0]`` state, ``[2]`` pgrp, ``[11]``/``[12]`` utime/stime)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:
            found[int(entry.name)] = fields
    return found


def group_pids(pgid: int) -> list[int]:
    """Every live process of a process group (an ``authgate serve``: supervisor, both
    gunicorn masters and their workers)."""
    return [pid for pid, fields in group_stats(pgid).items() if fields[0] != "Z"]


def kill_hard(proc: Proc) -> list[int]:
    """``kill -9`` of the whole process group at once (master and workers: no handler
    runs, nothing is flushed or closed). Returns the pids that were killed."""
    pids = group_pids(proc.popen.pid)
    os.killpg(proc.popen.pid, signal.SIGKILL)
    proc.popen.wait(10)
    return pids
