"""``/metrics`` under ``authgate serve`` (#18 item 1): both gunicorn pools in multiprocess
mode behind real nginx. Traffic goes through nginx; each pool is scraped directly, as
Prometheus would from ``server.metrics_networks``: every family is present, the values moved,
two workers' counts are summed, and neither nginx nor an address outside the configured
networks gets an answer."""
from __future__ import annotations

import http.client
import os
import shutil
import stat
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.harness import (
    NGINX_TEMPLATE,
    Proc,
    free_port,
    make_prefix,
    make_tls,
    start_authgate,
    start_nginx,
    stop,
    write_authgate_config,
)
from tests.integration.test_nginx import ALICE_PASSWORD, _authgate

pytestmark = pytest.mark.integration

VERIFY_FAMILIES = {
    "authgate_verify_decisions", "authgate_verify_duration_seconds",
    "authgate_audit_append_duration_seconds", "authgate_audit_checkpoint_age_seconds",
    "authgate_audit_unsigned_records", "authgate_policy_info",
    "authgate_policy_approved_timestamp_seconds", "authgate_build_info",
    "authgate_active_bans", "authgate_spray_detections"}
PORTAL_FAMILIES = VERIFY_FAMILIES - {"authgate_verify_decisions",
                                     "authgate_verify_duration_seconds"} | {
    "authgate_login_step_duration_seconds", "authgate_login_outcomes"}
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(port: int, source: str = "127.0.0.1") -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10,
                                      source_address=(source, 0))
    try:
        conn.request("GET", "/metrics")
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


def parse(text: str) -> tuple[set[str], Samples]:
    families = list(text_string_to_metric_families(text))
    return ({f.name for f in families if f.samples},
            {(s.name, frozenset(s.labels.items())): s.value for f in families
             for s in f.samples})


def total(samples: Samples, name: str, **labels: str) -> float:
    return sum(v for (n, ls), v in samples.items()
               if n == name and labels.items() <= dict(ls).items())


def metric_dir(pool_master: int) -> Path:
    environ = Path(f"/proc/{pool_master}/environ").read_bytes().split(b"\0")
    found = [e.split(b"=", 1)[1] for e in environ if e.startswith(b"PROMETHEUS_MULTIPROC_DIR=")]
    return Path(found[0].decode())


def pool_masters(gateway: Proc) -> list[int]:
    pid = gateway.popen.pid
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(c) for c in children]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    run_dir = tmp_path_factory.mktemp("metrics-stack")
    app_port, portal_port, gateway_port, verify_port, upstream_port = \
        (free_port() for _ in range(5))
    config = write_authgate_config(run_dir, public_url=f"https://localhost:{portal_port}",
                                   server={"metrics_networks": ["127.0.0.1/32"]})
    env = {"AUTHGATE_CONFIG": str(config)}
    _authgate(env, "db", "upgrade")
    _authgate(env, "users", "add", "alice", "--password-stdin", "--group", "City-Staff",
              stdin=ALICE_PASSWORD + "\n")
    tls, prefix = make_tls(run_dir / "tls"), make_prefix()
    gateway = start_authgate(env, portal_port=gateway_port, verify_port=verify_port,
                             run_dir=run_dir)
    nginx: Proc | None = None
    try:
        nginx = start_nginx(NGINX_TEMPLATE, {
            "LISTEN_V4": "127.0.0.1", "LISTEN_V6": "[::1]", "APP_HOST": "localhost",
            "APP_PORT": app_port, "PORTAL_HOST": "localhost", "PORTAL_PORT": portal_port,
            "GATEWAY_PORT": gateway_port, "VERIFY_PORT": verify_port,
            "UPSTREAM_PORT": upstream_port, "TLS_CERT": tls.cert, "TLS_KEY": tls.key,
        }, prefix, ready_url=f"https://localhost:{portal_port}/healthz", ca_file=tls.ca_cert)
        yield {"gateway": gateway, "nginx": nginx, "tls": tls, "verify": verify_port,
               "portal": gateway_port, "app": f"https://localhost:{app_port}",
               "public": f"https://localhost:{portal_port}"}
    finally:
        stop(nginx)
        masters = pool_masters(gateway) if gateway.popen.poll() is None else []
        dirs = [metric_dir(m) for m in masters]
        stop(gateway)
        shutil.rmtree(prefix, ignore_errors=True)
        assert dirs and not any(d.exists() for d in dirs), "metric files left behind"


def test_both_pools_export_every_family_and_it_moves_with_traffic(stack) -> None:  # type: ignore[no-untyped-def]
    from tests.integration.harness import Browser

    verify_port, portal_port = stack["verify"], stack["portal"]
    _, before_verify = parse(scrape(verify_port)[1])
    _, before_portal = parse(scrape(portal_port)[1])
    anonymous = 40

    def ask(_n: int) -> int:
        return requests.get(f"{stack['app']}/page", verify=str(stack["tls"].ca_cert),
                            allow_redirects=False, timeout=10).status_code

    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(ask, range(anonymous))) == {302}
    for password, signed_in in ((ALICE_PASSWORD, True), ("wrong password", False)):
        browser = Browser(stack["tls"].ca_cert)
        first = browser.get(f"{stack['app']}/start")
        done = browser.login(first.headers["Location"], "alice", password)
        assert (done.status_code == 303) is signed_in
        browser.close()

    families, verify = parse(scrape(verify_port)[1])
    assert VERIFY_FAMILIES <= families, VERIFY_FAMILIES - families
    assert total(verify, "authgate_verify_decisions_total", verdict="challenge") \
        - total(before_verify, "authgate_verify_decisions_total", verdict="challenge") \
        == anonymous + 2  # and each browser's first visit
    assert total(verify, "authgate_verify_duration_seconds_count") \
        - total(before_verify, "authgate_verify_duration_seconds_count") >= anonymous + 2
    families, portal = parse(scrape(portal_port)[1])
    assert PORTAL_FAMILIES <= families, PORTAL_FAMILIES - families
    assert total(portal, "authgate_login_outcomes_total", step="password",
                 outcome="failure") - total(before_portal, "authgate_login_outcomes_total",
                                            step="password", outcome="failure") == 1
    assert total(portal, "authgate_login_step_duration_seconds_count", step="password") \
        - total(before_portal, "authgate_login_step_duration_seconds_count",
                step="password") == 2
    assert not any(k for k in verify if k[0] == "authgate_verify_decisions_total"
                   and "pid" in dict(k[1]))  # summed over workers, not one series each


def test_two_workers_counts_are_summed(stack) -> None:  # type: ignore[no-untyped-def]
    """Each verify worker's own file, merged alone, holds part of the decisions; the scrape
    is their sum."""
    [verify_master] = [m for m in pool_masters(stack["gateway"])
                       if f"127.0.0.1:{stack['verify']}" in
                       Path(f"/proc/{m}/cmdline").read_text().replace("\0", " ")]
    directory = metric_dir(verify_master)
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    per_worker = []
    for path in sorted(directory.glob("counter_*.db")):
        merged = MultiProcessCollector.merge([str(path)], accumulate=True)
        per_worker.append(sum(s.value for m in merged for s in m.samples
                              if s.name == "authgate_verify_decisions_total"))
    _, samples = parse(scrape(stack["verify"])[1])
    assert len([n for n in per_worker if n > 0]) >= 2, per_worker  # both workers answered
    assert sum(per_worker) == total(samples, "authgate_verify_decisions_total")


def test_metrics_refused_through_nginx_and_outside_the_configured_networks(stack) -> None:  # type: ignore[no-untyped-def]
    ca = str(stack["tls"].ca_cert)
    public = requests.get(f"{stack['public']}/metrics", verify=ca, timeout=10)
    assert public.status_code == 404 and "authgate_" not in public.text
    via_app = requests.get(f"{stack['app']}/metrics", verify=ca, timeout=10,
                           allow_redirects=False)
    assert "authgate_build_info" not in via_app.text
    for port in (stack["verify"], stack["portal"]):
        status, body = scrape(port, source="127.0.0.2")  # loopback, outside 127.0.0.1/32
        assert status == 404 and "authgate_" not in body
        assert scrape(port)[0] == 200
    assert os.environ.get("PROMETHEUS_MULTIPROC_DIR") is None  # the tests' own process


def test_a_replaced_worker_keeps_its_counts(stack) -> None:  # type: ignore[no-untyped-def]
    """A worker that exits (here: killed) is replaced by gunicorn; the child_exit hook marks
    its files dead, and what it counted stays in the pool's sums: counters never go back."""
    import signal
    import time

    [verify_master] = [m for m in pool_masters(stack["gateway"])
                       if f"127.0.0.1:{stack['verify']}" in
                       Path(f"/proc/{m}/cmdline").read_text().replace("\0", " ")]
    workers = Path(f"/proc/{verify_master}/task/{verify_master}/children").read_text().split()
    _, before = parse(scrape(stack["verify"])[1])
    os.kill(int(workers[0]), signal.SIGKILL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        now = Path(f"/proc/{verify_master}/task/{verify_master}/children").read_text().split()
        if len(now) == len(workers) and workers[0] not in now:
            break
        time.sleep(0.2)
    else:
        pytest.fail("gunicorn did not replace the killed worker")
    status, text = scrape(stack["verify"])
    _, after = parse(text)
    assert status == 200
    assert total(after, "authgate_verify_decisions_total") \
        >= total(before, "authgate_verify_decisions_total") > 0
