"""Benchmark: the TOTP step of a login through the gateway (POST /login/totp under gunicorn),
beside a bare Flask app that checks a signed cookie, with the same client in the same run.

Not a test. Each of N prepared users (file directory, an activated TOTP credential, a session
at password level, the factor page's CSRF token) submits one fresh code: a real second-factor
step each time (decrypt the seed, verify, store the accepted step atomically, throttle
counters, raise the session under a new id, audit). Target: >= 0.25x the bare app's req/s.
Run: .venv/bin/python benchmarks/totp_step.py [--users 1500] [--threads 8]
"""
from __future__ import annotations

import argparse
import re
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyotp
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.bare_flask import COOKIE_NAME as BARE_COOKIE  # noqa: E402
from benchmarks.bare_flask import signed_cookie  # noqa: E402
from benchmarks.verify import _authgate_config  # noqa: E402
from tests.integration.harness import free_port, start_gunicorn, stop  # noqa: E402

RD = "https://localhost/mfa/report"
TARGET = 0.25


def prepare(config: Path, users: int) -> list[tuple[str, str]]:
    """(username, base32 secret) for N users with an active TOTP and no step used yet."""
    from argon2 import PasswordHasher

    from authgate.composition.root import build_services
    from authgate.config import load_settings
    from authgate.core.values import RequestMeta
    from authgate.directory.file import FileDirectory
    from authgate.storage.engine import migrate

    settings = load_settings(config)
    migrate(settings.storage.url)
    users_file = Path(settings.directory.file.path)
    cheap = FileDirectory(users_file, hasher=PasswordHasher(time_cost=1, memory_cost=1024))
    for i in range(users):
        cheap.add_user(f"u{i:05d}", "benchmark password 123", groups=["City-Staff"])
    services = build_services(settings)
    out = []
    earlier = datetime.now(UTC) - timedelta(seconds=30)
    for i in range(users):
        name = f"u{i:05d}"
        pending = services.mfa.totp.start(username=name, name="app", meta=RequestMeta())
        row = services.mfa.credentials.get(pending.credential_id)
        assert row is not None
        services.mfa.credentials.accept_step(row.id, int(earlier.timestamp()) // 30, earlier,
                                             activate=True)
        out.append((name, pending.secret))
    services.engine.dispose()
    return out


def sessions_for(config: Path, base: str, users: list[tuple[str, str]]) -> list[dict[str, str]]:
    """A password-level session and the factor page's CSRF token for each user."""
    from authgate.composition.root import build_services
    from authgate.config import load_settings
    from authgate.core.values import Identity, Level

    services = build_services(load_settings(config))
    prepared = []
    for name, secret in users:
        issued = services.sessions.start(Identity(name, groups=frozenset({"City-Staff"})),
                                         level=Level.PASSWORD, client_ip="127.0.0.1",
                                         user_agent="bench")
        cookie = f"__Host-authgate_session={issued.token}"
        page = requests.get(f"{base}/login/next", params={"rd": RD},
                            headers={"Cookie": cookie}, allow_redirects=False, timeout=10)
        token = re.search(r'data-csrf="([^"]+)"', page.text)
        assert page.status_code == 200 and token, (page.status_code, page.text[:200])
        csrf_cookie = page.cookies.get("__Host-csrf-authgate_session")
        prepared.append({"cookie": f"{cookie}; __Host-csrf-authgate_session={csrf_cookie}",
                         "csrf": token.group(1), "secret": secret})
    services.engine.dispose()
    return prepared


def run(calls: list, threads: int) -> tuple[float, float, float, int]:  # type: ignore[type-arg]
    latencies: list[float] = []
    bad = 0

    def one(call) -> None:  # type: ignore[no-untyped-def]
        nonlocal bad
        start = time.perf_counter()
        ok = call()
        latencies.append(time.perf_counter() - start)
        bad += 0 if ok else 1

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, calls))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return (len(calls) / elapsed, statistics.median(latencies) * 1e3,
            latencies[int(len(latencies) * 0.99) - 1] * 1e3, bad)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=1500)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="authgate-totp-bench-"))
    procs = []
    try:
        config = _authgate_config(work)
        users = prepare(config, args.users)
        gw, bare_port = free_port(), free_port()
        procs.append(start_gunicorn("wsgi:app", gw, {"AUTHGATE_CONFIG": str(config)},
                                    workers=2, run_dir=work, name="authgate"))
        bare_key = "b" * 48
        procs.append(start_gunicorn(
            "benchmarks.bare_flask:app", bare_port, {"BARE_SECRET_KEY": bare_key}, workers=2,
            run_dir=work, name="bare",
            ready=lambda r: r.status_code == 200 and r.text.strip() == "bare-ok"))
        base = f"http://127.0.0.1:{gw}"
        prepared = sessions_for(config, base, users)
        http = requests.Session()

        def totp_call(user: dict[str, str]):  # type: ignore[no-untyped-def]
            def call() -> bool:
                r = http.post(f"{base}/login/totp", allow_redirects=False, timeout=10,
                              headers={"Cookie": user["cookie"]},
                              data={"csrf_token": user["csrf"], "rd": RD,
                                    "code": pyotp.TOTP(user["secret"]).now()})
                return r.status_code == 303
            return call

        bare_cookie = f"{BARE_COOKIE}={signed_cookie(bare_key, 'alice')}"

        def bare_call() -> bool:
            r = http.get(f"http://127.0.0.1:{bare_port}/verify", timeout=10,
                         headers={"Cookie": bare_cookie})
            return r.status_code == 200

        b = run([bare_call] * len(prepared), args.threads)
        t = run([totp_call(u) for u in prepared], args.threads)
        print(f"{len(prepared)} requests each, {args.threads} client threads, gunicorn -w 2 sync")
        for name, (rps, p50, p99, bad) in (("bare", b), ("totp step", t)):
            print(f"  {name:10} {rps:7,.0f} req/s  p50 {p50:6.2f} ms  p99 {p99:6.2f} ms"
                  + (f"  FAILED: {bad}" if bad else ""))
        ratio = t[0] / b[0]
        print(f"  ratio totp step / bare: {ratio:.2f} (target >= {TARGET})")
        return 0 if not t[3] else 1
    finally:
        for proc in procs:
            stop(proc)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
