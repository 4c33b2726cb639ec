"""Benchmark: the TOTP step of a login (POST /login/totp under gunicorn -w 2) beside a bare
Flask app that checks a signed cookie, both loaded by wrk in the same run.

Not a test. Each measured request is a real second factor that the gateway accepts: a
prepared user (file directory, an activated TOTP credential, a session at password level,
the factor page's CSRF token) submits the code of the current time step, once
(benchmarks/one_use.lua): decrypt the seed, verify, store the accepted step atomically,
throttle counters, raise the session under a new id, audit. A code is accepted once per
user and step and a raised session cannot be raised again, so no line is ever sent twice;
anything but the 303 to /login/next counts as a failure, and so does a replay because the
prepared users ran out (raise ``--users``). Set-up goes through the app's own services: the
users file written once (``FileDirectory.add_users``), each TOTP seed enrolled by
``TotpService.start`` and activated with an earlier step, a session started by
``SessionService.start``, the CSRF token fetched from the factor page.

Every run prints its non-success count; with any, it prints INVALID instead of its figures
and the benchmark exits 1. Target: >= 0.25x the bare app's req/s.

    .venv/bin/python benchmarks/totp_step.py              # 5 s per run, 2 rounds
    .venv/bin/python benchmarks/totp_step.py --seconds 3 --rounds 1 --users 1500
"""
from __future__ import annotations

import argparse
import atexit
import os
import re
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.bare_flask import COOKIE_NAME as BARE_COOKIE  # noqa: E402
from benchmarks.bare_flask import signed_cookie  # noqa: E402
from benchmarks.loadgen import Credential, Measured, Target, access_log, invalid, measure  # noqa: E402
from benchmarks.verify import _authgate_config  # noqa: E402
from tests.integration.harness import Proc, free_port, start_gunicorn, stop  # noqa: E402

RD = "https://localhost/mfa/report"
TARGET = 0.25
#: prepared sign-ins per second of load: above what 2 quiet cores accept (1,380-1,470/s once
#: the step became one transaction, 2026-12; a run that runs out is INVALID, not flattered)
USERS_PER_SECOND = 1800
PASSWORD = "benchmark password 123"


def prepare(config: Path, users: int) -> list[tuple[str, str]]:
    """(username, base32 secret) for N users with an active TOTP and no step used yet."""
    from argon2 import PasswordHasher

    from authgate.composition.root import build_services
    from authgate.config import load_settings
    from authgate.core.values import RequestMeta
    from authgate.directory.file import FileDirectory, NewUser
    from authgate.storage.engine import migrate

    settings = load_settings(config)
    migrate(settings.storage.url)
    names = [f"u{i:05d}" for i in range(users)]
    cheap = PasswordHasher(time_cost=1, memory_cost=1024)  # set-up only: no login hashes
    FileDirectory(Path(settings.directory.file.path), hasher=cheap).add_users(
        NewUser(name, PASSWORD, groups=("City-Staff",)) for name in names)
    services = build_services(settings)
    out = []
    earlier = datetime.now(UTC) - timedelta(seconds=30)
    for name in names:
        pending = services.mfa.totp.start(username=name, name="app", meta=RequestMeta())
        row = services.mfa.credentials.get(pending.credential_id)
        assert row is not None
        services.mfa.credentials.accept_step(row.id, int(earlier.timestamp()) // 30, earlier,
                                             activate=True)
        out.append((name, pending.secret))
    services.engine.dispose()
    return out


def sessions_for(config: Path, base: str, users: list[tuple[str, str]]) -> list[Credential]:
    """A password-level session and the factor page's CSRF token for each user: one
    request line each for ``one_use.lua``."""
    from authgate.composition.root import build_services
    from authgate.config import load_settings
    from authgate.core.values import Identity, Level

    services = build_services(load_settings(config))
    tokens = [services.sessions.start(Identity(name, groups=frozenset({"City-Staff"})),
                                      level=Level.PASSWORD, client_ip="127.0.0.1",
                                      user_agent="bench").token for name, _ in users]
    services.engine.dispose()

    def factor_page(token: str) -> tuple[str, str]:
        cookie = f"__Host-authgate_session={token}"
        page = requests.get(f"{base}/login/next", params={"rd": RD},
                            headers={"Cookie": cookie}, allow_redirects=False, timeout=30)
        found = re.search(r'data-csrf="([^"]+)"', page.text)
        assert page.status_code == 200 and found, (page.status_code, page.text[:200])
        csrf_cookie = page.cookies.get("__Host-csrf-authgate_session")
        return f"{cookie}; __Host-csrf-authgate_session={csrf_cookie}", found.group(1)

    with ThreadPoolExecutor(4) as pool:
        pages = list(pool.map(factor_page, tokens))
    return [Credential("/login/totp", cookie,
                       urlencode({"csrf_token": csrf, "rd": RD}) + "&code={code}", secret)
            for (cookie, csrf), (_, secret) in zip(pages, users, strict=True)]


def start_authgate(work: Path, users: int, procs: list[Proc]) -> Target:
    """authgate under gunicorn -w 2 with ``users`` prepared sign-ins waiting for their code."""
    began = time.perf_counter()
    config = _authgate_config(work)
    enrolled = prepare(config, users)
    port = free_port()
    proc = start_gunicorn("wsgi:app", port, {"AUTHGATE_CONFIG": str(config)}, workers=2,
                          run_dir=work, name="authgate")
    procs.append(proc)
    log = Path(proc.extra["access_log"])
    base = f"http://127.0.0.1:{port}"
    credentials = sessions_for(config, base, enrolled)
    print(f"authgate: {users:,} users enrolled and signed in to the password level in "
          f"{time.perf_counter() - began:.1f} s")
    return Target("totp step", proc.popen.pid, f"{base}/login/totp",
                  answered=lambda: sum(access_log(log).values()),
                  accepted=lambda: access_log(log)[("/login/totp", 303)],
                  check="authgate", credentials=credentials)


def start_bare(work: Path, procs: list[Proc]) -> Target:
    key = secrets.token_urlsafe(48)
    port = free_port()
    proc = start_gunicorn("benchmarks.bare_flask:app", port, {"BARE_SECRET_KEY": key},
                          workers=2, run_dir=work, name="bare",
                          ready=lambda r: r.status_code == 200 and r.text.strip() == "bare-ok")
    procs.append(proc)
    log = Path(proc.extra["access_log"])
    return Target("bare", proc.popen.pid, f"http://127.0.0.1:{port}/verify",
                  answered=lambda: sum(access_log(log).values()),
                  accepted=lambda: access_log(log)[("/verify", 200)],
                  headers={"Cookie": f"{BARE_COOKIE}={signed_cookie(key, 'alice')}"})


def rounds(targets: Sequence[Target], args: argparse.Namespace,
           procs: list[Proc]) -> dict[str, list[Measured]]:
    """A warm-up run each, then ``args.rounds`` alternating runs of every target."""
    load = {"threads": args.threads, "connections": args.connections, "procs": procs}
    warm = [measure(t, seconds=args.warmup, **load) for t in targets]
    for w in warm:
        print(f"  warm-up {w.line().strip()}")
    results: dict[str, list[Measured]] = {t.name: [] for t in targets}
    for round_no in range(1, args.rounds + 1):
        print(f"round {round_no}:")
        for target in targets:
            results[target.name].append(measure(target, seconds=args.seconds, **load))
            print(results[target.name][-1].line())
    return results


def summary(results: dict[str, list[Measured]]) -> dict[str, tuple[float, float]] | None:
    """Median req/s and server CPU per accepted request of each target, or None (and the
    INVALID line) when any measured run had a failure."""
    failed: dict[str, int] = {}
    for measured in (m for ms in results.values() for m in ms):
        for name, n in measured.failures().items():
            failed[name] = failed.get(name, 0) + n
    refused = invalid(failed)
    print(f"\nnon-success answers in the measured runs: {sum(failed.values()):,}")
    if refused is not None:
        print(f"  {refused}")
        return None
    return {name: (float(statistics.median(m.run.rps for m in ms)),
                   float(statistics.median(m.served.cpu_us for m in ms)))
            for name, ms in results.items()}


def arguments(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--users", type=int,
                        help="prepared authgate sign-ins, each request spends one (default: "
                             f"{USERS_PER_SECOND} per second of load on authgate)")
    parser.add_argument("--seconds", type=float, default=5.0, help="per run (default 5)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds per server")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections")
    return parser


def work_dir(prefix: str) -> Path:
    """A temporary directory removed at exit, after the in-process services' audit logs
    closed their chains in it (atexit runs last-registered first)."""
    work = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, work, ignore_errors=True)
    return work


def users_default(args: argparse.Namespace) -> argparse.Namespace:
    if args.users is None:
        args.users = round(USERS_PER_SECOND * (args.warmup + args.rounds * args.seconds))
    return args


def main() -> int:
    args = users_default(arguments(__doc__.split("\n\n")[0]).parse_args())
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install -y wrk)")
    work = work_dir("authgate-totp-bench-")
    procs: list[Proc] = []
    try:
        targets = [start_bare(work, procs), start_authgate(work, args.users, procs)]
        print(f"wrk -t{args.threads} -c{args.connections} -d{args.seconds:g}s, gunicorn -w 2 "
              f"sync, {os.cpu_count()} CPUs")
        medians = summary(rounds(targets, args, procs))
        if medians is None:
            return 1
        (bare, bare_cpu), (totp, totp_cpu) = medians["bare"], medians["totp step"]
        print(f"  median: bare {bare:,.0f} req/s ({bare_cpu:,.0f} us CPU/req), totp step "
              f"{totp:,.0f} req/s ({totp_cpu:,.0f} us CPU per accepted code)")
        print(f"  ratio totp step / bare: {totp / bare:.2f} (target >= {TARGET})")
        return 0
    finally:
        for proc in procs:
            stop(proc)


if __name__ == "__main__":
    raise SystemExit(main())
