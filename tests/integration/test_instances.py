"""Several instances on one PostgreSQL (issue 18 item 2): two ``authgate serve`` masters
behind real nginx, both in each ``upstream``, sharing one PostgreSQL cluster this module
starts itself (``tests/fixtures/postgres.py``).

What an operator relies on when running more than one: a session made on one is honoured
by the other; the brute-force budget is shared (it lives in the database, not in a
process); ``kill -9`` of one instance under load loses no answered request's audit record,
nginx moves to the other, and the audit trail still verifies (the killed instance's chains
are reported open, not damaged); a PostgreSQL restart makes authgate deny while the
database is down and recover without being restarted (fail closed, docs/deployment.md
"Several instances").

nginx runs the shipped template with the second instance added to both upstreams
(``harness.instances_template``), plus one portal server block pinned to each instance so
a test can choose which one serves a login.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from sqlalchemy import Engine, create_engine, text

from tests.fixtures.postgres import PostgresCluster, postgres_cluster
from tests.integration.harness import (
    ROOT,
    TEST_POLICIES,
    VENV_BIN,
    Browser,
    Proc,
    TlsFiles,
    free_port,
    instances_template,
    kill_hard,
    make_prefix,
    make_tls,
    start_authgate,
    start_gunicorn,
    start_nginx,
    stop,
    write_authgate_config,
)

pytestmark = pytest.mark.integration

PASSWORDS = {"alice": "instances-password-for-alice", "bob": "instances-password-for-bob",
             "carol": "instances-password-for-carol"}
#: the policy's per-user failure limit in this module (the shipped 2, raised so that the
#: failures can alternate between the instances several times)
MAX_FAILURES = 4
UPSTREAM_MARK = "Sample city application"


@dataclass
class Instances:
    cluster: PostgresCluster
    db: Engine
    env: dict[str, str]
    tls: TlsFiles
    ports: dict[str, int]
    run_dir: Path
    gateways: dict[str, Proc]
    others: list[Proc] = field(default_factory=list)

    def url(self, server: str, path: str = "/") -> str:
        return f"https://localhost:{self.ports[server]}{path}"

    def browser(self) -> Browser:
        return Browser(self.tls.ca_cert)

    def rows(self, sql: str, **params: object) -> list[tuple[object, ...]]:
        with self.db.connect() as conn:
            return [tuple(r) for r in conn.execute(text(sql), params)]

    def records(self, request_ids: list[str], event: str) -> set[str]:
        """The request ids among ``request_ids`` that have an ``event`` record."""
        found = self.rows("SELECT request_id FROM audit_events WHERE event LIKE :event "
                          "AND request_id = ANY(:ids)", event=event, ids=request_ids)
        return {str(r[0]) for r in found}

    def start_gateway(self, name: str) -> None:
        suffix = "" if name == "a" else "_b"
        self.gateways[name] = start_authgate(
            self.env, portal_port=self.ports[f"gateway{suffix}"],
            verify_port=self.ports[f"verify{suffix}"], run_dir=self.run_dir / name,
            name=f"authgate-{name}", workers=2, threads=4)


def _authgate(env: dict[str, str], *args: str, stdin: str = "") -> str:
    done = subprocess.run([str(VENV_BIN / "authgate"), *args], input=stdin, text=True,
                          capture_output=True, env={**os.environ, **env}, cwd=ROOT, timeout=120)
    assert done.returncode == 0, f"authgate {' '.join(args)}: {done.stdout}{done.stderr}"
    return done.stdout + done.stderr


def _policies(run_dir: Path) -> Path:
    target = run_dir / "policies"
    shutil.copytree(TEST_POLICIES, target)
    globals_file = target / "00-globals.yaml"
    source = globals_file.read_text(encoding="utf-8")
    assert "max_failures_per_user: 2\n" in source
    globals_file.write_text(source.replace("max_failures_per_user: 2\n",
                                           f"max_failures_per_user: {MAX_FAILURES}\n"),
                            encoding="utf-8")
    return target


@pytest.fixture(scope="module")
def instances(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Instances]:
    run_dir = tmp_path_factory.mktemp("authgate-instances")
    names = ("app", "portal", "portal_a", "portal_b", "gateway", "gateway_b", "verify",
             "verify_b", "upstream")
    ports: dict[str, int] = {}
    while len(set(ports.values())) < len(names):
        ports = {name: free_port() for name in names}
    prefix = make_prefix()
    with postgres_cluster() as cluster:
        # one configuration (one set of secrets) for both instances, as on two hosts
        config = write_authgate_config(run_dir, public_url=f"https://localhost:{ports['portal']}",
                                       storage_url=cluster.url,
                                       policy={"path": str(_policies(run_dir))})
        env = {"AUTHGATE_CONFIG": str(config)}
        _authgate(env, "db", "upgrade")
        for user, password in PASSWORDS.items():
            _authgate(env, "users", "add", user, "--password-stdin", "--group", "City-Staff",
                      stdin=password + "\n")
        db = create_engine(cluster.url, pool_pre_ping=True)
        stack = Instances(cluster, db, env, make_tls(run_dir / "tls"), ports, run_dir, {})
        try:
            stack.start_gateway("a")
            stack.start_gateway("b")
            stack.others.append(start_gunicorn(
                "authgate.demo.sample_app:app", ports["upstream"], {}, workers=2,
                run_dir=run_dir, name="upstream", ready_path="/ready/whoami.json",
                ready=lambda r: r.status_code == 200 and r.json().get("app") == "sample"))
            stack.others.append(start_nginx(instances_template(prefix), {
                "LISTEN_V4": "127.0.0.1", "LISTEN_V6": "[::1]", "APP_HOST": "localhost",
                "APP_PORT": ports["app"], "PORTAL_HOST": "localhost",
                "PORTAL_PORT": ports["portal"], "PORTAL_A_PORT": ports["portal_a"],
                "PORTAL_B_PORT": ports["portal_b"], "GATEWAY_PORT": ports["gateway"],
                "GATEWAY_PORT_B": ports["gateway_b"], "VERIFY_PORT": ports["verify"],
                "VERIFY_PORT_B": ports["verify_b"], "UPSTREAM_PORT": ports["upstream"],
                "TLS_CERT": stack.tls.cert, "TLS_KEY": stack.tls.key,
            }, prefix, ready_url=stack.url("portal", "/healthz"), ca_file=stack.tls.ca_cert))
            yield stack
        finally:
            for proc in [*reversed(stack.others), *stack.gateways.values()]:
                stop(proc)
            db.dispose()
            shutil.rmtree(prefix, ignore_errors=True)


def _sign_in(stack: Instances, user: str, *, portal: str = "portal") -> Browser:
    """A browser signed in as ``user`` through ``portal`` (nginx's server block for one
    instance, or the load-balanced one)."""
    browser = stack.browser()
    target = stack.url("app", f"/{user}/start")
    first = browser.get(target)
    assert first.status_code == 302, first.status_code
    login = first.headers["Location"].replace(f":{stack.ports['portal']}/",
                                              f":{stack.ports[portal]}/")
    done = browser.login(login, user, PASSWORDS[user])
    assert done.status_code == 303 and done.headers["Location"] == target, done.text[:300]
    return browser


def _verify_direct(stack: Instances, verify_port: str, cookie: str,
                   path: str = "/direct/page") -> requests.Response:
    """``GET /verify`` on one instance's verify pool, with the headers nginx sends."""
    return requests.get(f"http://127.0.0.1:{stack.ports[verify_port]}/verify", headers={
        "Cookie": cookie, "User-Agent": "authgate-instances-test/1",
        "X-Original-URI": path, "X-Original-Method": "GET", "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "localhost", "X-Forwarded-Port": str(stack.ports["app"]),
        "X-Forwarded-For": "127.0.0.1", "X-Request-ID": os.urandom(16).hex()}, timeout=10)


# -- one session, any instance ----------------------------------------------------------------
def test_a_session_made_on_one_instance_is_honoured_by_the_other(stack_a_b: Instances) -> None:
    stack = stack_a_b
    browser = _sign_in(stack, "alice", portal="portal_a")
    made_on_a = stack.rows("SELECT request_id FROM audit_events WHERE event LIKE 'login%' "
                           "AND outcome = 'success' AND username = 'alice'")
    assert made_on_a, "the sign-in through instance A left no login record"
    on_b = _verify_direct(stack, "verify_b", browser.cookie_header())
    assert on_b.status_code == 200 and on_b.headers["Remote-User"] == "alice"
    [(outcome, user)] = stack.rows("SELECT outcome, username FROM audit_events "
                                   "WHERE request_id = :rid", rid=on_b.request.headers[
                                       "X-Request-ID"])
    assert (outcome, user) == ("allow", "alice")
    page = browser.get(stack.url("app", "/alice/through-nginx"))  # either instance
    assert page.status_code == 200 and UPSTREAM_MARK in page.text
    # and the other way round: signed out through B, refused by A at once
    cookie = browser.cookie_header()
    browser.logout(stack.url("portal_b"))
    assert _verify_direct(stack, "verify", cookie).status_code == 401


@pytest.fixture()
def stack_a_b(instances: Instances) -> Instances:
    """Both instances up (the kill test restarts the one it killed)."""
    for name, proc in instances.gateways.items():
        if not proc.running:
            instances.start_gateway(name)
    return instances


# -- one brute-force budget -------------------------------------------------------------------
def test_wrong_passwords_spread_across_both_instances_stop_at_the_threshold(
        stack_a_b: Instances) -> None:
    stack = stack_a_b
    answers: list[tuple[str, str]] = []
    for attempt in range(MAX_FAILURES + 2):
        portal = ("portal_a", "portal_b")[attempt % 2]
        browser = stack.browser()
        page = browser.login(stack.url(portal, "/login"), "bob", f"wrong-{attempt}")
        assert page.status_code != 303, page.status_code
        answers.append((portal, browser.login_chain[0].headers["X-Request-ID"]))
        browser.close()
    reasons = dict(stack.rows("SELECT request_id, reason FROM audit_events WHERE "
                              "event LIKE 'login%' AND request_id = ANY(:ids)",
                              ids=[rid for _, rid in answers]))
    by_attempt = [reasons.get(rid) for _, rid in answers]
    # the first MAX_FAILURES (alternating A, B, A, B) reached the directory; then both refuse
    assert by_attempt[:MAX_FAILURES] == ["invalid_credentials"] * MAX_FAILURES, by_attempt
    assert by_attempt[MAX_FAILURES:] == ["user_banned"] * 2, by_attempt
    assert {portal for portal, _ in answers[MAX_FAILURES:]} == {"portal_a", "portal_b"}
    # even the right password is refused now, on either instance, without a directory bind
    browser = stack.browser()
    right = browser.login(stack.url("portal_b", "/login"), "bob", PASSWORDS["bob"])
    assert right.status_code != 303
    [(reason,)] = stack.rows("SELECT reason FROM audit_events WHERE request_id = :rid",
                             rid=browser.login_chain[0].headers["X-Request-ID"])
    assert reason == "user_banned"


# -- PostgreSQL restarts ----------------------------------------------------------------------
def test_a_postgresql_restart_denies_while_down_and_recovers_without_restarting_authgate(
        stack_a_b: Instances) -> None:
    stack = stack_a_b
    browser = _sign_in(stack, "alice")
    pids = {name: proc.popen.pid for name, proc in stack.gateways.items()}
    assert browser.get(stack.url("app", "/alice/before")).status_code == 200
    stack.db.dispose()
    stack.cluster.stop()
    try:
        down: list[int] = []
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            down.append(browser.get(stack.url("app", "/alice/while-down")).status_code)
            for port in ("verify", "verify_b"):
                down.append(_verify_direct(stack, port, browser.cookie_header()).status_code)
        assert down and 200 not in down, sorted(set(down))
        assert set(down) <= {401, 403, 500, 502, 503}, sorted(set(down))
    finally:
        stack.cluster.start()
    # back at once: no thread of either instance denies on a connection the restart cut
    # (each notices the hang-up before use), and both portals sign in
    after = [_verify_direct(stack, port, browser.cookie_header()).status_code
             for port in ("verify", "verify_b") for _ in range(12)]
    after += [browser.get(stack.url("app", f"/alice/after/{n}")).status_code
              for n in range(12)]
    assert after == [200] * len(after), after
    for portal in ("portal_a", "portal_b"):
        _sign_in(stack, "carol", portal=portal).close()
    assert {name: proc.popen.pid for name, proc in stack.gateways.items()} == pids
    assert all(proc.running for proc in stack.gateways.values())


# -- kill -9 under load -----------------------------------------------------------------------
@dataclass
class _Load:
    """A thread doing /verify (alice's page through nginx) and, every few requests, a
    login (carol, through the load-balanced portal), remembering every answer."""

    stack: Instances
    cookie_browser: Browser
    answers: list[tuple[float, str, int, str]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        n = 0
        while not self.stop.is_set():
            n += 1
            try:
                if n % 5 == 0:
                    self._login()
                else:
                    r = self.cookie_browser.get(self.stack.url("app", f"/alice/load/{n}"))
                    self.answers.append((time.monotonic(), "verify", r.status_code,
                                         r.headers.get("X-Request-ID", "")))
            except requests.RequestException:
                self.answers.append((time.monotonic(), "error", 0, ""))

    def _login(self) -> None:
        browser = self.stack.browser()
        page = browser.get(self.stack.url("portal", "/login"))
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        if page.status_code != 200 or token is None:
            self.answers.append((time.monotonic(), "login", page.status_code, ""))
            return
        r = browser.post(self.stack.url("portal", "/login"), data={
            "csrf_token": token.group(1), "rd": "", "username": "carol",
            "password": PASSWORDS["carol"]})
        self.answers.append((time.monotonic(), "login", r.status_code,
                             r.headers.get("X-Request-ID", "")))
        browser.close()


def test_kill_9_of_one_instance_under_load_loses_no_answered_record_and_nginx_moves_on(
        stack_a_b: Instances) -> None:
    stack = stack_a_b
    load = _Load(stack, _sign_in(stack, "alice"))
    worker = threading.Thread(target=load.run, daemon=True)
    worker.start()
    time.sleep(3)
    killed_at = time.monotonic()
    killed = kill_hard(stack.gateways["a"])
    time.sleep(5)
    load.stop.set()
    worker.join(30)
    before = [a for a in load.answers if a[0] < killed_at]
    after = [a for a in load.answers if a[0] >= killed_at]
    assert len(before) >= 5 and len(after) >= 10, (len(before), len(after))

    # every answered request has its record: /verify allows and successful logins
    verified = [rid for _, kind, status, rid in load.answers if kind == "verify" and
                status == 200]
    assert verified and stack.records(verified, "verify") == set(verified)
    logged_in = [rid for _, kind, status, rid in load.answers if kind == "login" and
                 status == 303]
    assert logged_in and stack.records(logged_in, "login%") == set(logged_in)

    # nginx moved to B: at most a few failures, and the last requests all succeeded
    failed = [a for a in after if a[2] not in (200, 303)]
    assert len(failed) <= 3, failed
    assert all(a[2] in (200, 303) for a in after[-10:]), after[-10:]

    # the trail verifies; the killed instance's chains are open, not damaged
    report = _authgate(stack.env, "audit", "verify")
    assert "intact:" in report and "DAMAGED" not in report, report
    writers = stack.rows("SELECT c.chain_id, c.writer, "
                         "bool_or(e.event = 'audit.chain.close') FROM audit_chains c "
                         "JOIN audit_events e ON e.chain_id = c.chain_id "
                         "GROUP BY c.chain_id, c.writer")
    of_killed = [chain for chain, writer, closed in writers
                 if int(str(writer).rsplit(":", 1)[1]) in killed and not closed]
    assert of_killed, (killed, writers)
    opened = re.search(r"note: (\d+) chains are open", report)
    assert opened and int(opened.group(1)) >= len(of_killed), report


def test_a_hot_path_connection_is_reused_until_the_server_hangs_up() -> None:
    """The hang-up check must cost no reconnect while the server is up (a wrong check
    reopened the connection on every request: 3 ms of CPU each), and must catch a restart."""
    from authgate.storage import fastpath
    from authgate.storage.engine import make_engine

    with postgres_cluster() as cluster:
        engine = make_engine(cluster.url)
        try:
            fast = fastpath.connections_for(engine)
            fast.query("SELECT 1", ())
            first = fast._connection()
            for _ in range(20):
                assert fast.query("SELECT 1", ()) == [(1,)]
            assert fast._connection() is first
            cluster.stop()
            cluster.start()
            assert fast.query("SELECT 1", ()) == [(1,)]  # no deny after the restart
            assert fast._connection() is not first
        finally:
            engine.dispose()
