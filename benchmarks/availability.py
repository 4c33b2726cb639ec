"""Benchmark: forward auth under a login flood (issue 15 item 7). Not a test.

``/verify`` for a signed-in user is loaded at low concurrency (``wrk -t1 -c2``), once quiet
and once while an open-loop flood (benchmarks/flood.py) sends ``--flood-rate`` wrong
passwords a second to ``POST /login`` (real CSRF token, real accounts, a new connection and
a new ``X-Forwarded-For`` address per attempt, as a botnet would: it does not wait for
answers), in the same run. Before the runs, ``--prime`` staff typos teach every portal
worker its failure floor from quiet binds, as a day in service would. Each refused attempt
is padded to that floor (``regulation/timing.py``), which is what used to occupy the
gateway's sync workers; the portal CPU per answered attempt is printed. Shapes, all in one run:

- ``serve``: the gateway as ``authgate serve`` starts it (tests/integration/harness.py
  ``start_authgate``): a verify pool of sync workers, a portal pool of gthread workers at a
  lower CPU priority; the flood goes to the portal, ``/verify`` to the verify pool, as the
  nginx template routes them;
- ``one-pool``: the former shape, one gunicorn (``-w 2`` sync) serving both (``--one-pool``;
  under the flood it answers nothing within wrk's timeout);
- ``bare``: bare Flask checking a signed cookie (benchmarks/bare_flask.py), quiet: the
  baseline the other benchmarks print.

Target: under attack, p99 <= 2x the quiet p99 and req/s >= 0.8x quiet, with a flood of at
least 100 attempts/s. Every /verify run prints its non-2xx count (wrk's non-2xx
answers and socket errors): with any, INVALID replaces its figures and the exit status is 1.
The flood's own answers are refusals by design (wrong passwords): they are counted by status,
not as failures. Compare ratios within one run: 2 shared cores, wrk on the same cores.

    .venv/bin/python benchmarks/availability.py               # 10 s per run, 2 rounds
    .venv/bin/python benchmarks/availability.py --seconds 5 --rounds 1
"""
from __future__ import annotations

import argparse
import os
import re
import secrets
import shutil
import statistics
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
from benchmarks.flood import FloodReport, FloodTarget, OpenLoopFlood  # noqa: E402
from benchmarks.loadgen import invalid  # noqa: E402
from benchmarks.verify import (  # noqa: E402
    HEADERS,
    Result,
    _check,
    _failures,
    _session_token,
    _wait_idle,
    _wrk,
)
from tests.integration.harness import (  # noqa: E402
    Proc,
    free_port,
    group_stats,
    start_authgate,
    start_gunicorn,
    stop,
    write_authgate_config,
)

P99_TARGET, RPS_TARGET, FLOOD_TARGET = 2.0, 0.8, 100.0
USERS = ("alice", "bob", "carol", "dave")
#: other staff whose everyday typos teach the failure floor before the attack (``--prime``)
STAFF = tuple(f"staff{n:03d}" for n in range(100))
PASSWORD = "correct horse battery staple"

def _portal_ticks(pgid: int) -> int:
    """utime + stime of the portal pool's processes (``gunicorn --name authgate-portal``)
    of an ``authgate serve`` process group, or of a whole one-pool gunicorn."""
    stats = group_stats(pgid)
    portal = 0
    for pid, fields in stats.items():
        try:
            if b"authgate-portal" in Path(f"/proc/{pid}/cmdline").read_bytes():
                portal += int(fields[11]) + int(fields[12])
        except OSError:
            continue
    return portal or sum(int(f[11]) + int(f[12]) for f in stats.values())


def _users_file(work: Path) -> Path:
    from authgate.directory.file import FileDirectory

    path = work / "users.yaml"
    directory = FileDirectory(path)  # argon2id defaults, as deployed
    for user in (*USERS, *STAFF):
        directory.add_user(user, PASSWORD, groups=["City-Staff"])
    return path


def _prime(port: int, attempts: int) -> None:
    """What a gateway in service has seen before an attack: staff typos, one at a time, two
    per person from their own address. Each is a real failed bind, so every portal worker's
    failure floor (``regulation/timing.py``) is learnt from quiet binds, as in production;
    without it, a fresh gateway learns its floor from the flood's first concurrent binds
    (the worst case: ``--prime 0``)."""
    token, cookie = _login_form(port)
    session = requests.Session()
    for n in range(attempts):
        user = STAFF[n // 2 % len(STAFF)]
        answer = session.post(f"http://127.0.0.1:{port}/login", timeout=30, data={
            "csrf_token": token, "rd": "", "username": user, "password": f"typo-{n}"},
            headers={"Host": "auth.localhost", "X-Forwarded-Proto": "https",
                     "X-Forwarded-Host": "auth.localhost", "Cookie": cookie,
                     "X-Forwarded-For": f"172.16.{n // 2 % 250}.{n % 2 + 1}"})
        if answer.status_code != 401:
            raise SystemExit(f"priming: a typo for {user} answered {answer.status_code}")


def _login_form(port: int) -> tuple[str, str]:
    """A CSRF token and the cookie it belongs to, fetched once (an attacker reuses them)."""
    page = requests.get(f"http://127.0.0.1:{port}/login", timeout=10, headers={
        "Host": "auth.localhost", "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "auth.localhost"})
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    cookie = page.headers.get("Set-Cookie", "").split(";", 1)[0]
    if page.status_code != 200 or token is None or not cookie:
        raise SystemExit(f"no login form on port {port}: {page.status_code}")
    return token.group(1), cookie


def _flood_target(port: int) -> FloodTarget:
    token, cookie = _login_form(port)
    return FloodTarget(port=port, token=token, cookie=cookie, users=USERS)


def _attacked(name: str, verify_url: str, flood: FloodTarget, headers: dict[str, str],
              args: argparse.Namespace, procs: list[Proc]) -> tuple[Result, Flood]:
    """wrk on /verify while the flood runs (started 2 s earlier, so the floor is learnt and
    the attacked accounts are banned: the steady state of an attack)."""
    _wait_idle(procs)
    pgid = next(p.popen.pid for p in procs if p.name == name)
    ticks = _portal_ticks(pgid)
    running = OpenLoopFlood(flood, rate=args.flood_rate, seconds=args.seconds + 3).start()
    time.sleep(2)
    result = _wrk(name, verify_url, headers, args, args.seconds)
    report = running.result()
    answered = sum(report.statuses.values())
    cpu_ms = (_portal_ticks(pgid) - ticks) * 1000 / os.sysconf("SC_CLK_TCK") / answered \
        if answered else 0.0
    return result, Flood(report, cpu_ms)


@dataclass(frozen=True)
class Flood:
    report: FloodReport
    cpu_ms: float  # portal CPU per answered attempt (drained ones included)


def _quiet(name: str, url: str, headers: dict[str, str], args: argparse.Namespace,
           procs: list[Proc]) -> Result:
    _wait_idle(procs)
    return _wrk(name, url, headers, args, args.seconds)


def _line(label: str, r: Result, flood: Flood | None = None) -> str:
    refused = invalid(_failures(r))
    text = f"  {label:22} {refused}" if refused else (
        f"  {label:22} {r.rps:7,.0f} req/s   p50 {r.p50_ms:7.2f} ms   p99 "
        f"{r.p99_ms:8.2f} ms   non-2xx 0")
    if flood is not None:
        text += (f"\n  {'':22} flood: {flood.report.describe()}; "
                 f"{flood.cpu_ms:.2f} ms portal CPU per answered attempt")
    return text


@dataclass
class Shape:
    name: str
    verify_url: str
    flood_port: int
    flood: FloodTarget
    quiet: list[Result]
    attacked: list[Result]
    floods: list[Flood]


def _start_shapes(work: Path, config: Path, args: argparse.Namespace,
                  procs: list[Proc]) -> list[Shape]:
    env = {"AUTHGATE_CONFIG": str(config)}
    portal, verify = free_port(), free_port()
    procs.append(start_authgate(env, portal_port=portal, verify_port=verify, run_dir=work,
                                workers=args.workers, threads=args.portal_threads,
                                name="serve", extra=("--portal-nice", str(args.portal_nice))))
    shapes = [Shape("serve", f"http://127.0.0.1:{verify}/verify", portal,
                    _flood_target(portal), [], [], [])]
    if args.one_pool:
        single = free_port()
        procs.append(start_gunicorn("wsgi:app", single, env, workers=args.workers,
                                    run_dir=work, name="one-pool"))
        shapes.append(Shape("one-pool", f"http://127.0.0.1:{single}/verify", single,
                            _flood_target(single), [], [], []))
    return shapes


def _verdict(shape: Shape, bare_rps: float) -> bool:
    """Prints the shape's medians and verdict; False (and INVALID) if a run had failures."""
    def med(results: list[Result], attr: str) -> float:
        return float(statistics.median(getattr(r, attr) for r in results))

    p99 = med(shape.attacked, "p99_ms") / med(shape.quiet, "p99_ms")
    rps = med(shape.attacked, "rps") / med(shape.quiet, "rps")
    flood = statistics.median(f.report.offered for f in shape.floods)
    ok = p99 <= P99_TARGET and rps >= RPS_TARGET and flood >= FLOOD_TARGET
    failed = sum(sum(_failures(r).values()) for r in [*shape.quiet, *shape.attacked])
    if failed:
        print(f"  {shape.name:9} INVALID: {failed:,} non-2xx /verify answers (or socket "
              f"errors); no figure reported")
        return False
    verdict = ("MEETS" if ok else "MISSES") + " the target"
    print(f"  {shape.name:9} quiet {med(shape.quiet, 'rps'):6,.0f} req/s p99 "
          f"{med(shape.quiet, 'p99_ms'):7.2f} ms | attacked {med(shape.attacked, 'rps'):6,.0f}"
          f" req/s p99 {med(shape.attacked, 'p99_ms'):8.2f} ms | flood {flood:5,.0f}/s | "
          f"p99 x{p99:.2f} (<= {P99_TARGET}), req/s x{rps:.2f} (>= {RPS_TARGET}), quiet/bare "
          f"{med(shape.quiet, 'rps') / bare_rps:.2f}: {verdict}")
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="per run (default 10)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads on /verify")
    parser.add_argument("--connections", type=int, default=2, help="wrk connections on /verify")
    parser.add_argument("--flood-rate", type=float, default=150.0,
                        help="wrong-password attempts sent per second, open loop")
    parser.add_argument("--prime", type=int, default=200,
                        help="staff typos before the runs (0: a freshly started gateway)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--portal-nice", type=int, default=19, help="authgate serve's")
    parser.add_argument("--portal-threads", type=int, default=64,
                        help="authgate serve --threads (per portal worker)")
    parser.add_argument("--one-pool", action="store_true",
                        help="also the former one-pool shape (it stops answering under the "
                             "flood and takes minutes to drain)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install -y wrk)")
    work = Path(tempfile.mkdtemp(prefix="authgate-availability-"))
    procs: list[Proc] = []
    try:
        return _run(work, args, procs)
    finally:
        for proc in procs:
            stop(proc)
        if args.keep:
            print(f"work directory kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def _run(work: Path, args: argparse.Namespace, procs: list[Proc]) -> int:
    config = write_authgate_config(work, public_url="https://auth.localhost",
                                   users_file=_users_file(work), log_level="WARNING")
    cookie_name, token = _session_token(config)
    bare_key = secrets.token_urlsafe(48)
    headers = {**HEADERS, "Cookie": f"{cookie_name}={token}; "
               f"{BARE_COOKIE}={signed_cookie(bare_key, 'alice')}"}
    shapes = _start_shapes(work, config, args, procs)
    bare_port = free_port()
    procs.append(start_gunicorn(
        "benchmarks.bare_flask:app", bare_port, {"BARE_SECRET_KEY": bare_key},
        workers=args.workers, run_dir=work, name="bare",
        ready=lambda r: r.status_code == 200 and r.text.strip() == "bare-ok"))
    bare_url = f"http://127.0.0.1:{bare_port}/verify"
    for shape in shapes:
        _prime(shape.flood_port, args.prime)
    for url in [bare_url, *(s.verify_url for s in shapes)]:
        _check(url, headers, "alice")
        _wrk("warm-up", url, headers, args, 2)
    print(f"/verify: wrk -t{args.threads} -c{args.connections} -d{args.seconds:g}s; flood: "
          f"{args.flood_rate:g} POST /login a second, open loop, each on a new connection "
          f"from a new address, wrong passwords for {len(USERS)} accounts; {os.cpu_count()} "
          f"CPUs, gunicorn -w {args.workers}, {args.portal_threads} portal threads, portal "
          f"nice {args.portal_nice}; {args.prime} staff typos before")
    bare: list[Result] = []
    for round_no in range(1, args.rounds + 1):
        print(f"round {round_no}:")
        bare.append(_quiet("bare", bare_url, headers, args, procs))
        print(_line("bare (quiet)", bare[-1]))
        for shape in shapes:
            shape.quiet.append(_quiet(shape.name, shape.verify_url, headers, args, procs))
            print(_line(f"{shape.name} (quiet)", shape.quiet[-1]))
            result, flood = _attacked(shape.name, shape.verify_url, shape.flood, headers,
                                      args, procs)
            shape.attacked.append(result)
            shape.floods.append(flood)
            print(_line(f"{shape.name} (under attack)", result, flood))
    bare_failed = sum(sum(_failures(r).values()) for r in bare)
    print(f"\nnon-2xx /verify answers in the measured runs: bare {bare_failed:,}, "
          + ", ".join(f"{s.name} {sum(sum(_failures(r).values()) for r in s.quiet + s.attacked):,}"
                      for s in shapes))
    if bare_failed:
        print("  INVALID: the bare baseline had non-2xx answers; no figure reported")
        return 1
    bare_rps = float(statistics.median(r.rps for r in bare))
    print(f"median over rounds (bare Flask {bare_rps:,.0f} req/s):")
    valid = [_verdict(shape, bare_rps) for shape in shapes]
    load1 = os.getloadavg()[0]
    if load1 > (os.cpu_count() or 1) + 1:
        print(f"  NOTE: load average {load1:.1f}: other jobs were competing")
    return 0 if all(valid) else 1


if __name__ == "__main__":
    sys.exit(main())
