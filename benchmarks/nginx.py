"""What authgate adds behind nginx (not a test): the same sample app through two nginx
instances rendered from the shipped template (deploy/nginx/authgate.conf.template), one as
shipped (every request asks authgate's ``/verify`` through ``auth_request``) and one with
the ``auth_request`` line removed, nothing else changed: the same TLS, headers, upstream
and access log. authgate runs as deployed (``authgate serve``: a sync verify pool and a
gthread portal pool, tests/integration/harness.py), with a signed-in user's cookie on every
request, so each one is an allow with its audit record.

wrk loads both with the same request, alternating rounds, at low concurrency (one
connection: the latency a user feels) and loaded (``-t2 -c32``: throughput). Printed per
instance: req/s, p50 and p99, and wrk's non-2xx answers and socket errors: a run with any
prints INVALID and the exit status is 1. Figures from one run only compare with each other
(2 shared cores; wrk, nginx, authgate and the app on the same cores).

    .venv/bin/python benchmarks/nginx.py                 # 5 s per run, 3 rounds
    .venv/bin/python benchmarks/nginx.py --seconds 10 --rounds 2
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.loadgen import invalid  # noqa: E402
from benchmarks.verify import Result, _failures, _wrk  # noqa: E402
from tests.fixtures.net import free_port  # noqa: E402
from tests.integration.harness import (  # noqa: E402
    NGINX_TEMPLATE,
    VENV_BIN,
    Browser,
    Proc,
    make_prefix,
    make_tls,
    start_authgate,
    start_gunicorn,
    start_nginx,
    stop,
    write_authgate_config,
)

PASSWORD = "benchmark password for alice"  # noqa: S105 - a throwaway account
AUTH_LINE = "auth_request /_authgate/verify;"
#: the loads: (name, wrk threads, wrk connections)
LOADS = (("1 connection", 1, 1), ("32 connections", 2, 32))


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    return parser.parse_args()


def _authgate_cli(env: dict[str, str], *args: str, stdin: str = "") -> None:
    done = subprocess.run([str(VENV_BIN / "authgate"), *args], input=stdin, text=True,
                          capture_output=True, env={**os.environ, **env}, cwd=ROOT, timeout=60)
    if done.returncode != 0:
        raise SystemExit(f"authgate {' '.join(args)}: {done.stdout}{done.stderr}")


def _without_auth(run_dir: Path) -> Path:
    """The shipped template minus its one ``auth_request`` line (checked to be there once)."""
    text = NGINX_TEMPLATE.read_text(encoding="utf-8")
    if text.count(AUTH_LINE) != 1:
        raise SystemExit(f"expected one `{AUTH_LINE}` in {NGINX_TEMPLATE}")
    plain = run_dir / "without-auth.conf.template"
    plain.write_text(text.replace(AUTH_LINE, "# (no auth_request: benchmark baseline)"),
                     encoding="utf-8")
    return plain


def _nginx(template: Path, values: dict[str, object], *, app_port: int, portal_port: int,
           ca_file: Path) -> tuple[Proc, Path]:
    prefix = make_prefix()
    proc = start_nginx(template, {**values, "APP_PORT": app_port, "PORTAL_PORT": portal_port},
                       prefix, ready_url=f"https://localhost:{portal_port}/healthz",
                       ca_file=ca_file)
    return proc, prefix


def _check(url: str, cookie: str, ca_file: Path, user: str | None) -> None:
    """The request wrk sends is answered 200 by the sample app, as ``user`` if given."""
    import requests

    response = requests.get(url, headers={"Cookie": cookie}, verify=str(ca_file),
                            allow_redirects=False, timeout=5)
    who = response.json() if response.status_code == 200 else {}
    if who.get("app") != "sample" or (user and who["headers"].get("Remote-User") != user):
        raise SystemExit(f"{url} answered {response.status_code} {response.text[:200]!r}: "
                         f"the benchmark would not measure an allowed request")


def _rounds(urls: dict[str, str], cookie: str, args: argparse.Namespace
            ) -> dict[tuple[str, str], list[Result]]:
    results: dict[tuple[str, str], list[Result]] = {}
    wrk_args = argparse.Namespace()
    for round_ in range(args.rounds):
        for load, threads, connections in LOADS:
            wrk_args.threads, wrk_args.connections = threads, connections
            order = list(urls) if round_ % 2 == 0 else list(reversed(urls))
            for name in order:
                result = _wrk(name, urls[name], {"Cookie": cookie}, wrk_args, args.seconds)
                results.setdefault((load, name), []).append(result)
                print(f"round {round_ + 1}, {load:>14}: {name:<13} {result.rps:8,.0f} req/s  "
                      f"p50 {result.p50_ms:6.2f} ms  p99 {result.p99_ms:6.2f} ms  "
                      f"{invalid(_failures(result)) or 'non-2xx 0'}", flush=True)
    return results


def _summary(results: dict[tuple[str, str], list[Result]]) -> int:
    bad = [r for rs in results.values() for r in rs if invalid(_failures(r))]
    print("\nmedian over rounds:")
    for load, _threads, _connections in LOADS:
        plain, auth = results[(load, "without auth")], results[(load, "with authgate")]
        p50 = [statistics.median(r.p50_ms for r in rs) for rs in (plain, auth)]
        p99 = [statistics.median(r.p99_ms for r in rs) for rs in (plain, auth)]
        rps = [statistics.median(r.rps for r in rs) for rs in (plain, auth)]
        print(f"  {load:>14}: without auth {rps[0]:7,.0f} req/s, p50 {p50[0]:.2f} ms, p99 "
              f"{p99[0]:.2f} ms; with authgate {rps[1]:7,.0f} req/s, p50 {p50[1]:.2f} ms, p99 "
              f"{p99[1]:.2f} ms: +{p50[1] - p50[0]:.2f} ms p50, req/s x{rps[1] / rps[0]:.2f}")
    if bad:
        print(f"INVALID: {len(bad)} runs had non-2xx answers or socket errors")
        return 1
    return 0


def main() -> int:
    args = _arguments()
    run_dir = Path(tempfile.mkdtemp(prefix="authgate-bench-nginx-"))
    ports = {name: free_port() for name in ("app", "portal", "plain_app", "plain_portal",
                                            "gateway", "verify", "upstream")}
    if len(set(ports.values())) < len(ports):
        raise SystemExit("could not find distinct free ports; run again")
    config = write_authgate_config(run_dir, public_url=f"https://localhost:{ports['portal']}")
    env = {"AUTHGATE_CONFIG": str(config)}
    _authgate_cli(env, "db", "upgrade")
    _authgate_cli(env, "users", "add", "alice", "--password-stdin", "--group", "City-Staff",
                  stdin=PASSWORD + "\n")
    tls = make_tls(run_dir / "tls")
    procs: list[Proc] = []
    prefixes: list[Path] = []
    try:
        procs.append(start_authgate(env, portal_port=ports["gateway"],
                                    verify_port=ports["verify"], run_dir=run_dir,
                                    portal_nice=None))
        procs.append(start_gunicorn(
            "authgate.demo.sample_app:app", ports["upstream"], {}, workers=2,
            run_dir=run_dir, name="upstream", ready_path="/ready/whoami.json",
            ready=lambda r: r.status_code == 200 and r.json().get("app") == "sample"))
        values: dict[str, object] = {
            "LISTEN_V4": "127.0.0.1", "LISTEN_V6": "[::1]", "APP_HOST": "localhost",
            "PORTAL_HOST": "localhost", "GATEWAY_PORT": ports["gateway"],
            "VERIFY_PORT": ports["verify"], "UPSTREAM_PORT": ports["upstream"],
            "TLS_CERT": tls.cert, "TLS_KEY": tls.key}
        for template, app, portal in ((NGINX_TEMPLATE, "app", "portal"),
                                      (_without_auth(run_dir), "plain_app", "plain_portal")):
            proc, prefix = _nginx(template, values, app_port=ports[app],
                                  portal_port=ports[portal], ca_file=tls.ca_cert)
            procs.append(proc)
            prefixes.append(prefix)
        return _measure(ports, tls.ca_cert, args)
    finally:
        for proc in reversed(procs):
            stop(proc)
        for prefix in prefixes:
            shutil.rmtree(prefix, ignore_errors=True)
        shutil.rmtree(run_dir, ignore_errors=True)


def _measure(ports: dict[str, int], ca_file: Path, args: argparse.Namespace) -> int:
    browser = Browser(ca_file)
    app = f"https://localhost:{ports['app']}"
    first = browser.get(f"{app}/bench/start")
    if browser.login(first.headers["Location"], "alice", PASSWORD).status_code != 303:
        raise SystemExit("alice could not sign in through nginx")
    cookie = browser.cookie_header()
    browser.close()
    urls = {"without auth": f"https://localhost:{ports['plain_app']}/bench/whoami.json",
            "with authgate": f"{app}/bench/whoami.json"}
    _check(urls["with authgate"], cookie, ca_file, "alice")
    _check(urls["without auth"], cookie, ca_file, None)
    return _summary(_rounds(urls, cookie, args))


if __name__ == "__main__":
    sys.exit(main())
