"""Benchmark: authgate's ``/verify`` against a bare Flask app that only checks a signed cookie.

Not a test. Both apps run under gunicorn (``-w 2``, sync workers) on loopback, in the same
run, and are loaded by the same client (``wrk -t2 -c32``) with the same request: the headers
nginx sends (``X-Original-URI`` and friends) and one Cookie header carrying both apps' session
cookies. authgate runs as deployed: production mode, SQLite in WAL mode, a real server-side
session, the repository's policies, and one audit record written per request.

    .venv/bin/python benchmarks/verify.py            # 10 s per run, 2 rounds
    .venv/bin/python benchmarks/verify.py --seconds 5 --rounds 1
    .venv/bin/python benchmarks/verify.py --profile  # then py-spy on one authgate worker
    .venv/bin/python benchmarks/verify.py --storage postgresql  # + authgate on PostgreSQL

``--storage postgresql`` adds a third server, authgate on a throwaway PostgreSQL cluster
(``tests/fixtures/postgres.py``, with ``pg_stat_statements``), and reports its figure as a
ratio to authgate on SQLite in the same run (target 0.6), plus the database round trips per
``/verify``: every statement PostgreSQL executed (BEGIN and COMMIT included) during the
measured runs, divided by the requests the PostgreSQL instance served.

Runs alternate (bare, authgate, bare, authgate, ...) after a warm-up, and the servers are
left to go idle between runs (requests still queued when wrk stops would pollute the next
figure). Compare the ratio, not absolute figures: the machine is shared and wrk competes with
the servers for the same cores (real-components.md, "Benchmarking").

Every run prints its non-2xx count (wrk's non-2xx answers and socket errors); a run with any
prints INVALID instead of its figures, and then no summary is printed and the exit status is 1.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import re
import secrets
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.bare_flask import COOKIE_NAME as BARE_COOKIE  # noqa: E402
from benchmarks.bare_flask import signed_cookie  # noqa: E402
from benchmarks.loadgen import invalid  # noqa: E402
from tests.fixtures.postgres import PostgresCluster, postgres_cluster  # noqa: E402
from tests.integration.harness import (  # noqa: E402
    Proc,
    free_port,
    group_stats,
    start_gunicorn,
    stop,
    write_authgate_config,
)

TARGET_RATIO = 0.90  # issue 20 item 3: in every round
PG_TARGET_RATIO = 0.60  # authgate on PostgreSQL / authgate on SQLite (issue 18)
HEADERS = {
    "X-Original-URI": "/bench/page?id=42&view=full",
    "X-Original-Method": "GET",
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": "localhost",
    "X-Forwarded-For": "127.0.0.1",
    "User-Agent": "authgate-benchmark/1 (wrk)",
}


@dataclass(frozen=True)
class Result:
    name: str
    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    errors: str
    #: server CPU (master + workers, user + system) per request served: unlike req/s, this
    #: hardly moves when other jobs compete for the cores
    cpu_us: float = 0.0


def _authgate_config(work: Path, storage_url: str | None = None) -> Path:
    """alice is a real user of the users file: the session refresh (every 5 minutes)
    re-reads her account, and a session for a name the directory does not know would be
    revoked then, every later ``/verify`` a 401 (issue 20 item 5)."""
    from authgate.directory.file import FileDirectory

    work.mkdir(parents=True, exist_ok=True)
    users = work / "users.yaml"
    FileDirectory(users).add_user("alice", "correct horse battery staple",
                                  groups=["City-Staff", "IT-Dept"])
    return write_authgate_config(work, public_url="https://auth.localhost", users_file=users,
                                 log_level="WARNING", storage_url=storage_url)


def _session_token(config: Path) -> tuple[str, str]:
    """Migrate, then start a real session through the app's own services (what a password
    login does after the directory bind). Returns (cookie name, token)."""
    from authgate.composition.root import build_services
    from authgate.config import load_settings
    from authgate.core.values import Level
    from authgate.storage.engine import migrate

    settings = load_settings(config)
    migrate(settings.storage.url)
    services = build_services(settings)
    alice = services.directory.lookup("alice")  # as the directory has her: refresh keeps it
    if alice is None:
        raise SystemExit("alice is not in the benchmark's users file")
    issued = services.sessions.start(
        alice, level=Level.PASSWORD, client_ip="127.0.0.1", user_agent=HEADERS["User-Agent"])
    services.engine.dispose()
    s = settings.session
    name = s.cookie_name if s.cookie_domain else f"__Host-{s.cookie_name}"
    return name, issued.token


def _cpu_ticks(pid: int) -> int:
    """utime + stime of a gunicorn master's process group (master and workers)."""
    return sum(int(f[11]) + int(f[12]) for f in group_stats(pid).values())


def _wait_idle(procs: list[Proc], quiet: float = 0.5, timeout: float = 30.0) -> None:
    """Until no server process burns CPU for ``quiet`` seconds (queued requests drained)."""
    deadline = time.monotonic() + timeout
    before = sum(_cpu_ticks(p.popen.pid) for p in procs)
    while time.monotonic() < deadline:
        time.sleep(quiet)
        now = sum(_cpu_ticks(p.popen.pid) for p in procs)
        if now - before <= 1:  # at most one clock tick (10 ms) in the window
            return
        before = now
    print("  (servers still busy after 30 s; continuing)", file=sys.stderr)


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if match is None:
        raise ValueError(f"unexpected wrk latency {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def _wrk(name: str, url: str, headers: dict[str, str], args: argparse.Namespace,
         seconds: float) -> Result:
    cmd = ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{max(1, round(seconds))}s",
           "--latency", "--timeout", "5s"]
    for key, value in headers.items():
        cmd += ["-H", f"{key}: {value}"]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    return Result(name, total, rps, p50, p99, int(non2xx.group(1)) if non2xx else 0,
                  errors.group(0) if errors else "")


def _check(url: str, headers: dict[str, str], expect_user: str) -> None:
    response = requests.get(url, headers=headers, timeout=5)
    if response.status_code != 200 or response.headers.get("Remote-User") != expect_user:
        raise SystemExit(f"{url} answered {response.status_code} "
                         f"(Remote-User={response.headers.get('Remote-User')!r}): the "
                         f"benchmark would measure a refusal, not an allow")


_COUNT_VERIFY = "SELECT count(*) FROM audit_events WHERE event = 'verify'"


def _audit_rows(db: Path) -> int:
    with sqlite3.connect(db, timeout=30) as conn:
        return int(conn.execute(_COUNT_VERIFY).fetchone()[0])


#: the statements the benchmark itself runs in the cluster: not authgate's round trips
_OWN = "query NOT LIKE '%pg_stat_statements%' AND query NOT LIKE 'SELECT count(*) FROM audit%'"


def _pg_round_trips(cluster: PostgresCluster, served: int) -> None:
    """Statements PostgreSQL executed for authgate since the last reset, per request served
    (each is one client/server round trip: psycopg sends BEGIN and COMMIT on their own)."""
    rows = cluster.psql(f"SELECT calls, regexp_replace(query, '\\s+', ' ', 'g') "  # noqa: S608
                        f"FROM pg_stat_statements WHERE {_OWN} ORDER BY calls DESC")
    parsed = [(int(calls), text) for calls, _, text in
              (line.partition("|") for line in rows.splitlines() if line)]
    total = sum(calls for calls, _ in parsed)
    print(f"  PostgreSQL round trips per /verify: {total / max(served, 1):.2f} "
          f"({total:,} statements for {served:,} requests served), by statement:")
    for calls, text in parsed[:6]:
        print(f"    {calls / max(served, 1):5.2f}  {text[:100]}")


def _served(proc: Proc) -> int:
    """Requests a gunicorn instance has answered: lines in its access log."""
    with open(proc.extra["access_log"], "rb") as log:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: log.read(1 << 20), b""))


def _measure(name: str, proc: Proc, url: str, headers: dict[str, str],
             args: argparse.Namespace, procs: list[Proc]) -> Result:
    """One wrk run, plus the server CPU it cost per request (counted after the server went
    idle, so requests still queued when wrk stopped are in both numerator and denominator)."""
    _wait_idle(procs)
    ticks, served = _cpu_ticks(proc.popen.pid), _served(proc)
    result = _wrk(name, url, headers, args, args.seconds)
    _wait_idle(procs)
    ticks, served = _cpu_ticks(proc.popen.pid) - ticks, _served(proc) - served
    cpu_us = ticks * 1e6 / os.sysconf("SC_CLK_TCK") / max(served, 1)
    return dataclasses.replace(result, cpu_us=cpu_us)


def _failures(result: Result) -> dict[str, int]:
    """What was not a 2xx answer: wrk's non-2xx count and its socket errors."""
    return {"non-2xx": result.non_2xx,
            "socket errors": sum(int(n) for n in re.findall(r"\d+", result.errors))}


def _print(result: Result) -> None:
    refused = invalid(_failures(result))
    if refused is not None:
        print(f"  {result.name:9} {refused}")
        return
    print(f"  {result.name:9} {result.rps:7,.0f} req/s   p50 {result.p50_ms:6.2f} ms   "
          f"p99 {result.p99_ms:7.2f} ms   server CPU {result.cpu_us:5.0f} us/req   "
          f"({result.requests:,} requests, non-2xx 0)")


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="per run (default 10)")
    parser.add_argument("--rounds", type=int, default=2, help="bare/authgate pairs (default 2)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds per app")
    parser.add_argument("--storage", choices=("sqlite", "postgresql"), default="sqlite",
                        help="postgresql: also run authgate on a throwaway PostgreSQL cluster "
                             "and compare it with SQLite (and count its round trips)")
    parser.add_argument("--profile", action="store_true",
                        help="afterwards, load authgate again and sample one worker with "
                             "py-spy (needs py-spy on PATH or PY_SPY=/path/to/py-spy)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    return parser.parse_args()


def main() -> int:
    args = _arguments()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install -y wrk)")
    work = Path(tempfile.mkdtemp(prefix="authgate-bench-"))
    try:
        if args.storage == "postgresql":
            with postgres_cluster("shared_preload_libraries=pg_stat_statements",
                                  "pg_stat_statements.track=all") as cluster:
                cluster.psql("CREATE EXTENSION pg_stat_statements")
                return _run(args, work, cluster)
        return _run(args, work, None)
    finally:
        if args.keep:
            print(f"work directory kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def _start_authgate(name: str, config: Path, port: int, args: argparse.Namespace,
                    work: Path) -> Proc:
    """As ``authgate serve`` runs it: multiprocess metrics in a private directory."""
    metrics_dir = work / f"metrics-{name}"
    metrics_dir.mkdir(mode=0o700)
    env = {"AUTHGATE_CONFIG": str(config), "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    return start_gunicorn("wsgi:app", port, env, workers=args.workers, run_dir=work,
                          name=name)


def _run(args: argparse.Namespace, work: Path, cluster: PostgresCluster | None) -> int:
    procs: list[Proc] = []
    try:
        config = _authgate_config(work)
        cookie_name, token = _session_token(config)
        bare_key = secrets.token_urlsafe(48)
        cookie = f"{cookie_name}={token}; {BARE_COOKIE}={signed_cookie(bare_key, 'alice')}"
        gw_port, bare_port = free_port(), free_port()
        servers = {"authgate": _start_authgate("authgate", config, gw_port, args, work)}
        procs.append(servers["authgate"])
        servers["bare"] = start_gunicorn(
            "benchmarks.bare_flask:app", bare_port, {"BARE_SECRET_KEY": bare_key},
            workers=args.workers, run_dir=work, name="bare",
            ready=lambda r: r.status_code == 200 and r.text.strip() == "bare-ok")
        procs.append(servers["bare"])
        urls = {"bare": f"http://127.0.0.1:{bare_port}/verify",
                "authgate": f"http://127.0.0.1:{gw_port}/verify"}
        headers = {"authgate": {**HEADERS, "Cookie": cookie}, "bare": {**HEADERS, "Cookie": cookie}}
        if cluster is not None:
            pg_config = _authgate_config(work / "pg", cluster.url)
            pg_cookie, pg_token = _session_token(pg_config)
            pg_port = free_port()
            servers["postgresql"] = _start_authgate("postgresql", pg_config, pg_port, args,
                                                    work / "pg")
            procs.append(servers["postgresql"])
            urls["postgresql"] = f"http://127.0.0.1:{pg_port}/verify"
            headers["postgresql"] = {**HEADERS, "Cookie": f"{pg_cookie}={pg_token}"}
        for name, url in urls.items():
            _check(url, headers[name], "alice")
        return _rounds(args, work, cluster, servers, urls, headers, procs)
    finally:
        for proc in procs:
            stop(proc)


def _rounds(args: argparse.Namespace, work: Path, cluster: PostgresCluster | None,
            servers: dict[str, Proc], urls: dict[str, str],
            headers: dict[str, dict[str, str]], procs: list[Proc]) -> int:
    order = ["bare", "authgate", *(["postgresql"] if cluster is not None else [])]
    print(f"gunicorn -w {args.workers} (sync), wrk -t{args.threads} -c{args.connections} "
          f"-d{args.seconds:g}s, {os.cpu_count()} CPUs; authgate: production mode, SQLite "
          f"WAL{' (and PostgreSQL 15)' if cluster else ''}, audit on")
    for name in order:  # warm-up: imports, connections, page cache, prepared statements
        _wrk(name, urls[name], headers[name], args, args.warmup)
        _wait_idle(procs)
    audit_before = _audit_rows(work / "authgate.db")
    if cluster is not None:
        cluster.psql("SELECT pg_stat_statements_reset()")
        pg_served = _served(servers["postgresql"])
    results: dict[str, list[Result]] = {name: [] for name in order}
    for round_no in range(1, args.rounds + 1):
        print(f"round {round_no}:")
        for name in order:
            result = _measure(name, servers[name], urls[name], headers[name], args, procs)
            results[name].append(result)
            _print(result)
    _wait_idle(procs)
    audited = _audit_rows(work / "authgate.db") - audit_before
    failed: dict[str, int] = {}
    for result in (r for rs in results.values() for r in rs):
        for name, n in _failures(result).items():
            failed[name] = failed.get(name, 0) + n
    refused = invalid(failed)
    print(f"\nnon-2xx answers in the measured runs: {sum(failed.values()):,}")
    if refused is not None:
        print(f"  {refused}")
        return 1
    _summary(results, args)
    if cluster is not None:
        _pg_round_trips(cluster, _served(servers["postgresql"]) - pg_served)
    sent = sum(r.requests for r in results["authgate"])
    print(f"  audit: {audited:,} verify records written for {sent:,} measured requests "
          f"(wrk counts completed responses; in-flight ones at the cut-off are extra)")
    if args.profile:
        _profile(servers["authgate"], urls["authgate"], headers["authgate"], args, work)
    return 0


def _summary(results: dict[str, list[Result]], args: argparse.Namespace) -> None:
    def med(name: str, attr: str) -> float:
        return float(statistics.median(getattr(r, attr) for r in results[name]))

    print("median over rounds:")
    for name in results:
        print(f"  {name:10} {med(name, 'rps'):7,.0f} req/s   p50 {med(name, 'p50_ms'):6.2f} "
              f"ms   p99 {med(name, 'p99_ms'):7.2f} ms   server CPU "
              f"{med(name, 'cpu_us'):5.0f} us/req")
    pairs = [("authgate", "bare", TARGET_RATIO)]
    if "postgresql" in results:
        pairs.append(("postgresql", "authgate", PG_TARGET_RATIO))
    for top, bottom, target in pairs:
        ratio = med(top, "rps") / med(bottom, "rps")
        cpu_ratio = med(bottom, "cpu_us") / med(top, "cpu_us")
        per_round = ", ".join(f"{a.rps / b.rps:.2f}"
                              for a, b in zip(results[top], results[bottom], strict=True))
        verdict = "meets" if ratio >= target else "BELOW"
        print(f"  ratio {top}/{bottom}: {ratio:.2f} (per round: {per_round}); {verdict} the "
              f"{target:.2f} target; CPU-bound capacity ratio ({bottom} CPU/request / {top} "
              f"CPU/request): {cpu_ratio:.2f}")
    load1 = os.getloadavg()[0]
    if load1 > (os.cpu_count() or 1) + 1:
        print(f"  NOTE: load average {load1:.1f} on {os.cpu_count()} CPUs: other jobs were "
              f"competing; req/s figures are unreliable, compare the CPU ratio")


def _profile(authgate: Proc, url: str, headers: dict[str, str], args: argparse.Namespace,
             work: Path) -> None:
    """Sample one authgate worker with py-spy while wrk loads it. ``--idle`` keeps the time
    a worker waits (SQLite's busy handler sleeping on a lock, a socket), not only on-CPU."""
    py_spy = os.environ.get("PY_SPY") or shutil.which("py-spy")
    if py_spy is None:
        print("py-spy not found: skipping the profile (pip install --target DIR py-spy)")
        return
    workers = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()
               and _ppid(int(p.name)) == authgate.popen.pid]
    out = work / "profile.txt"
    seconds = max(round(args.seconds), 8)
    wrk = ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{seconds + 2}s"]
    for key, value in headers.items():
        wrk += ["-H", f"{key}: {value}"]
    load = subprocess.Popen([*wrk, url], stdout=subprocess.DEVNULL)
    time.sleep(1)
    subprocess.run([py_spy, "record", "--pid", str(workers[0]), "--duration", str(seconds),
                    "--format", "raw", "--output", str(out), "--nonblocking", "--idle",
                    "--rate", "250"], check=False, capture_output=True)
    load.wait()
    print(f"\npy-spy profile (wall clock, idle included) of worker {workers[0]}: {out}")
    _summarise(out)


def _ppid(pid: int) -> int:
    try:
        return int((Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return -1


_INTERESTING = ("authgate/", "sqlalchemy/engine/base.py", "flask/app.py", "gunicorn/util.py",
                "gunicorn/workers/sync.py")


def _summarise(raw: Path, top: int = 25) -> None:
    """Inclusive share per frame (authgate, Flask, SQLAlchemy, gunicorn), then self time."""
    inclusive: dict[str, int] = {}
    leaves: dict[str, int] = {}
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = stack.split(";")
        leaves[frames[-1]] = leaves.get(frames[-1], 0) + count
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + count
    if not total:
        print("  no samples (py-spy needs ptrace: root or CAP_SYS_PTRACE)")
        return
    print(f"  {total} samples; inclusive share:")
    ranked = sorted(inclusive.items(), key=lambda kv: -kv[1])
    for frame, count in [kv for kv in ranked if any(k in kv[0] for k in _INTERESTING)][:top]:
        print(f"  {100 * count / total:5.1f}%  {frame[:130]}")
    print("  self time (where the samples end), top 12:")
    for frame, count in sorted(leaves.items(), key=lambda kv: -kv[1])[:12]:
        print(f"  {100 * count / total:5.1f}%  {frame[:130]}")


if __name__ == "__main__":
    raise SystemExit(main())
