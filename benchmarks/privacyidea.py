"""Benchmark: authgate's TOTP step beside privacyIDEA's ``POST /validate/check``, in the same
run, loaded by the same generator (wrk with benchmarks/one_use.lua, same -t/-c). Not a test.

privacyIDEA comes from PyPI into its own venv (``/tmp/authgate-privacyidea-VERSION``, kept
for the next run; never the project's venv) and is set up for production as its docs say:
``pi.cfg`` on SQLite, ``pi-manage setup create_enckey``, ``create_audit_keys`` (it signs its
audit rows and its answers), ``create_tables``, ``pi-manage admin add``, a flat-file
``passwdresolver`` in a default realm (3.14 ships no SQL resolver), then gunicorn -w 2 sync
on loopback. Its SQLite database is switched to WAL, as authgate's runs: in its default
rollback-journal mode (``--pi-journal delete``) the two workers wait on each other's locks
(p50 1.6 s at 6 checks/s here), so req/s would measure lock sleeps rather than work.

Each user gets one TOTP token through the REST API (``POST /auth`` for an admin JWT,
``POST /token/init`` with the seed). Each measured request checks one user's code for the
current step, once: privacyIDEA refuses a code it has seen, as authgate does. An answer
counts only with ``"authentication": "ACCEPT"`` and ``"value": true``, and privacyIDEA's own
audit must show as many accepted checks as it answered. The authgate side is
benchmarks/totp_step.py's (a real second-factor step that raises a session, audited).

Printed: req/s, latency, server CPU per accepted code (gunicorn master + workers, /proc) for
both, and the ratios; INVALID instead of figures when any answer was not an accepted code.
Target (issue 20): authgate >= 20x privacyIDEA. Caveat: privacyIDEA's passwdresolver
re-reads its users file on every request (about 2.4 ms per 1,100 users here), so its users
are kept to what the runs need (``--pi-users``).

    .venv/bin/python benchmarks/privacyidea.py                 # 5 s per run, 2 rounds
    .venv/bin/python benchmarks/privacyidea.py --version 3.13.4 --seconds 3 --rounds 1
"""
from __future__ import annotations

import argparse
import os
import secrets
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from base64 import b32encode
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.loadgen import Credential, Target  # noqa: E402
from benchmarks.totp_step import (  # noqa: E402
    arguments,
    rounds,
    start_authgate,
    summary,
    users_default,
    work_dir,
)
from tests.integration.harness import Proc, free_port, stop, wait_until  # noqa: E402

TARGET = 20.0
#: users per second of load: above what privacyIDEA accepts on 2 cores
PI_USERS_PER_SECOND = 80
REALM = "city"
ADMIN = "admin"


def ensure_venv(version: str) -> Path:
    """The ``bin`` of a venv with privacyIDEA ``version`` and gunicorn, made once."""
    venv = Path(tempfile.gettempdir()) / f"authgate-privacyidea-{version}"
    done = venv / ".installed"
    if not done.exists():
        print(f"installing privacyIDEA {version} into {venv} (once)")
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet",
                        f"privacyidea=={version}", "gunicorn"], check=True)
        done.write_text(version)
    return venv / "bin"


def _pi_cfg(work: Path) -> Path:
    """pi.cfg as the installation docs describe it, every path inside ``work``."""
    cfg = work / "pi.cfg"
    cfg.write_text("\n".join([
        f"SQLALCHEMY_DATABASE_URI = 'sqlite:///{work / 'pi.sqlite'}'",
        f"SECRET_KEY = '{secrets.token_hex(32)}'",
        f"PI_PEPPER = '{secrets.token_hex(16)}'",
        f"PI_ENCFILE = '{work / 'enckey'}'",
        f"PI_AUDIT_KEY_PRIVATE = '{work / 'private.pem'}'",
        f"PI_AUDIT_KEY_PUBLIC = '{work / 'public.pem'}'",
        f"PI_LOGFILE = '{work / 'privacyidea.log'}'",
        "PI_LOGLEVEL = 30  # WARNING, as authgate runs here",
        f"PI_UUID_FILE = '{work / 'uuid.txt'}'",
        "PI_NODE = 'bench'", ""]), encoding="utf-8")
    cfg.chmod(0o600)
    return cfg


def configure(work: Path, bin_dir: Path, names: list[str], password: str,
              journal: str) -> dict[str, str]:
    """Keys, tables, an admin, the users file resolver and a default realm (pi-manage)."""
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PRIVACYIDEA_CONFIGFILE": str(_pi_cfg(work))}
    passwd = work / "users.passwd"
    passwd.write_text("".join(f"{name}:x:{2000 + n}:2000:{name}:/home/{name}:/bin/false\n"
                              for n, name in enumerate(names)), encoding="utf-8")
    resolver = work / "resolver.conf"
    resolver.write_text(repr({"fileName": str(passwd)}), encoding="utf-8")
    for step in (["setup", "create_enckey"], ["setup", "create_audit_keys"],
                 ["setup", "create_tables"], ["admin", "add", ADMIN, "-p", password],
                 ["config", "resolver", "create", "staff", "passwdresolver", str(resolver)],
                 ["config", "realm", "create", REALM, "staff"],
                 ["config", "realm", "set_default", REALM]):
        done = subprocess.run([str(bin_dir / "pi-manage"), *step], env=env, cwd=work,
                              capture_output=True, text=True)
        if done.returncode != 0 or "could not be assigned" in done.stdout:
            raise SystemExit(f"pi-manage {step[:2]} failed:\n{done.stdout}{done.stderr}")
    with sqlite3.connect(work / "pi.sqlite") as conn:  # WAL: as authgate's SQLite runs
        conn.execute(f"PRAGMA journal_mode={journal}")
    return env


def start_privacyidea(bin_dir: Path, env: dict[str, str], work: Path,
                      procs: list[Proc]) -> tuple[Proc, str]:
    port = free_port()
    log = work / "gunicorn.log"
    with open(log, "ab") as out:
        popen = subprocess.Popen(
            [str(bin_dir / "gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers", "2",
             "--worker-class", "sync", "--no-control-socket", "--graceful-timeout", "5",
             "privacyidea.app:create_app(config_name='production', silent=True)"],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=work, env=env,
            start_new_session=True)
    proc = Proc("privacyidea", popen, log)
    procs.append(proc)
    base = f"http://127.0.0.1:{port}"
    wait_until(lambda: requests.get(f"{base}/healthz/", timeout=2).json()["result"]["value"]
               ["status"] == "ready", proc, timeout=60)
    return proc, base


def enrol(base: str, names: list[str], password: str) -> list[str]:
    """One TOTP token per user through the REST API; returns the base32 seeds."""
    auth = requests.post(f"{base}/auth", data={"username": ADMIN, "password": password},
                         timeout=30).json()
    headers = {"Authorization": auth["result"]["value"]["token"]}

    def init(name: str) -> str:
        seed = secrets.token_bytes(20)
        answer = requests.post(f"{base}/token/init", headers=headers, timeout=60, data={
            "type": "totp", "otpkey": seed.hex(), "genkey": "0", "user": name,
            "realm": REALM, "description": "benchmark"}).json()
        if answer["result"].get("status") is not True:
            raise SystemExit(f"token/init for {name}: {answer['result']}")
        return b32encode(seed).decode()

    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(init, names))


def _checks(db: Path, *, accepted: bool) -> int:
    """privacyIDEA's own account: its audit rows for /validate/check (every answer is
    audited; its access log is not a count: its logging set-up turns gunicorn's off)."""
    only = " AND authentication = 'ACCEPT'" if accepted else ""
    with sqlite3.connect(db, timeout=30) as conn:
        return int(conn.execute("SELECT count(*) FROM pidea_audit WHERE action = "  # noqa: S608
                                f"'POST /validate/check'{only}").fetchone()[0])


def privacyidea_target(args: argparse.Namespace, work: Path, procs: list[Proc]) -> Target:
    bin_dir = ensure_venv(args.version)
    began = time.perf_counter()
    names = [f"p{n:05d}" for n in range(args.pi_users)]
    password = secrets.token_urlsafe(18)
    env = configure(work, bin_dir, names, password, args.pi_journal)
    proc, base = start_privacyidea(bin_dir, env, work, procs)
    seeds = enrol(base, names, password)
    print(f"privacyIDEA {args.version} (SQLite, journal {args.pi_journal}): {len(names):,} "
          f"users with a TOTP token in {time.perf_counter() - began:.1f} s")
    db = work / "pi.sqlite"
    return Target(
        "privacyIDEA", proc.popen.pid, f"{base}/validate/check",
        answered=lambda: _checks(db, accepted=False),
        accepted=lambda: _checks(db, accepted=True), check="privacyidea",
        credentials=[Credential("/validate/check", "", f"user={name}&realm={REALM}&pass={{code}}",
                                seed) for name, seed in zip(names, seeds, strict=True)])


def main() -> int:
    parser = arguments(__doc__.split("\n\n")[0])
    parser.add_argument("--version", default="3.14", help="privacyIDEA from PyPI")
    parser.add_argument("--pi-users", type=int, help="privacyIDEA users, each request spends "
                        f"one (default: {PI_USERS_PER_SECOND} per second of load)")
    parser.add_argument("--pi-journal", choices=("wal", "delete"), default="wal",
                        help="privacyIDEA's SQLite journal mode (delete: its default)")
    args = users_default(parser.parse_args())
    seconds = args.warmup + args.rounds * args.seconds
    args.pi_users = args.pi_users or round(PI_USERS_PER_SECOND * seconds)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install -y wrk)")
    work = work_dir("authgate-vs-privacyidea-")
    procs: list[Proc] = []
    try:
        targets = [start_authgate(work / "authgate", args.users, procs),
                   privacyidea_target(args, work / "privacyidea", procs)]
        print(f"wrk -t{args.threads} -c{args.connections} -d{args.seconds:g}s on both, "
              f"gunicorn -w 2 sync each, {os.cpu_count()} CPUs")
        medians = summary(rounds(targets, args, procs))
        if medians is None:
            return 1
        (ours, ours_cpu), (peer, peer_cpu) = medians["totp step"], medians["privacyIDEA"]
        print(f"  median: authgate TOTP step {ours:,.0f} req/s, {ours_cpu:,.0f} us CPU per "
              f"accepted code; privacyIDEA /validate/check {peer:,.0f} req/s, "
              f"{peer_cpu:,.0f} us CPU per accepted code")
        print(f"  ratio authgate / privacyIDEA: {ours / peer:.1f}x req/s, "
              f"{peer_cpu / ours_cpu:.1f}x less CPU per accepted code (target >= {TARGET:g}x)")
        return 0
    finally:
        for proc in procs:
            stop(proc)


if __name__ == "__main__":
    raise SystemExit(main())
