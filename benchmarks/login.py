"""The password step of a login: authgate's LdapDirectory beside raw ldap3, same DC, same run.

    .venv/bin/python benchmarks/login.py [--dc-dir DIR] [-n 200]

Uses the DC described by DIR/dc.env when it is running; otherwise starts its own with
scripts/samba-dc.sh in a temporary directory and stops it at the end. Not a test: on a shared
2-core machine only ratios within one run mean anything (docs: real-components.md).

Variants, each at concurrency 1 and 8 (threads), N logins of the same user:
- authgate: ``LdapDirectory.authenticate`` (user search, one user bind on a new connection,
  transitive group search; pooled service connections, TCP_NODELAY)
- authgate, group_base_dn: the same with the group search scoped to the groups OU (the
  IN_CHAIN search is the DC's most expensive step when it scans the whole domain)
- raw naive: what a plain client does per login: new LDAPS connection, service bind, search,
  rebind as the user, unbind (Nagle left on, as ldap3 does by default)
- raw + nodelay: the same with TCP_NODELAY set after open
- raw + nodelay + groups: the same plus the IN_CHAIN group search (authgate's work, naively)

LDAP, not HTTP: the count printed is of failed logins (a refused bind, an LDAP error); a
variant with any prints INVALID instead of its figures, its ratios are not printed, and the
exit status is 1.
"""
from __future__ import annotations

import argparse
import shlex
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ldap3 import NONE, SUBTREE, Connection, Server, Tls

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from authgate.config.settings import LdapDirectorySettings, Secret  # noqa: E402
from authgate.directory.ldap import LdapDirectory  # noqa: E402
from benchmarks.loadgen import invalid  # noqa: E402

SCRIPT = ROOT / "scripts" / "samba-dc.sh"
USER = "bob"


def read_env(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines()
             if "=" in line and not line.startswith("#"))
    return {k: shlex.split(v)[0] if v else "" for k, v in pairs}


def running(dc_dir: Path) -> bool:
    return subprocess.run(["bash", str(SCRIPT), "status", str(dc_dir)],
                          capture_output=True, check=False).returncode == 0


def raw_login(env: dict[str, str], *, nodelay: bool, groups: bool) -> Callable[[], None]:
    tls = Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=env["AD_CA_FILE"])

    def login() -> None:
        server = Server("localhost", port=636, use_ssl=True, tls=tls, get_info=NONE)
        conn = Connection(server, env["AD_BIND_DN"], env["AD_BIND_PASSWORD"])
        conn.open(read_server_info=False)
        if nodelay:
            conn.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if not conn.bind(read_server_info=False):
            raise RuntimeError(f"service bind refused: {conn.result}")
        conn.search(env["AD_BASE_DN"], f"(sAMAccountName={USER})", SUBTREE,
                    attributes=["displayName", "mail", "objectGUID"])
        dn = next(e["dn"] for e in conn.response if e["type"] == "searchResEntry")
        if not conn.rebind(user=dn, password=env["AD_USER_PASSWORD"]):
            raise RuntimeError(f"user bind refused: {conn.result}")
        if groups:
            conn.search(env["AD_BASE_DN"],
                        f"(&(objectClass=group)(member:1.2.840.113556.1.4.1941:={dn}))",
                        SUBTREE, attributes=["cn"])
        conn.unbind()
    return login


def authgate_login(env: dict[str, str], *, group_base_dn: str = "") -> Callable[[], None]:
    directory = LdapDirectory(settings=LdapDirectorySettings(
        urls=(env["AD_LDAPS_URL"],), base_dn=env["AD_BASE_DN"], bind_dn=env["AD_BIND_DN"],
        bind_password=Secret(env["AD_BIND_PASSWORD"]), ca_file=env["AD_CA_FILE"],
        upn_suffix=env["AD_UPN_SUFFIX"], netbios_domain=env["AD_DOMAIN"],
        group_base_dn=group_base_dn))

    def login() -> None:
        directory.authenticate(username=USER, password=env["AD_USER_PASSWORD"])
    return login


def measure(fn: Callable[[], None], *, n: int,
            concurrency: int) -> tuple[list[float], float, int]:
    """Latencies (ms) and rate of the logins that succeeded, and how many failed."""
    def timed(_: int) -> float | None:
        t = time.perf_counter()
        try:
            fn()
        except Exception:  # noqa: BLE001 - any failed login is counted, none is timed
            return None
        return (time.perf_counter() - t) * 1000
    for _ in range(10):
        fn()  # warm-up: pools, caches, the DC's own
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        results = list(pool.map(timed, range(n)))
    times = [t for t in results if t is not None]
    return times, len(times) / (time.perf_counter() - start), n - len(times)


def pct(times: list[float], q: float) -> float:
    return statistics.quantiles(times, n=100, method="inclusive")[int(q) - 1]


def run(env: dict[str, str], n: int) -> bool:
    """Prints each variant's figures; False where a login failed (INVALID, no figure)."""
    valid = True
    variants = {
        "authgate": authgate_login(env),
        "authgate, group_base_dn": authgate_login(env, group_base_dn=env["AD_GROUP_BASE_DN"]),
        "raw naive": raw_login(env, nodelay=False, groups=False),
        "raw + nodelay": raw_login(env, nodelay=True, groups=False),
        "raw + nodelay + groups": raw_login(env, nodelay=True, groups=True),
    }
    for concurrency in (1, 8):
        print(f"\nconcurrency {concurrency}, {n} logins each")
        print(f"  {'variant':26} {'p50 ms':>8} {'p99 ms':>8} {'logins/s':>9}")
        results = {name: measure(fn, n=n, concurrency=concurrency) for name, fn in variants.items()}
        failed = {name: bad for name, (_, _, bad) in results.items()}
        for name, (times, rate, bad) in results.items():
            refused = invalid({"failed logins": bad})
            print(f"  {name:26} {refused}" if refused else f"  {name:26} "
                  f"{statistics.median(times):8.1f} {pct(times, 99):8.1f} {rate:9.0f}   failed 0")
        if any(failed.values()):
            valid = False
            continue
        p50 = {name: statistics.median(times) for name, (times, _, _) in results.items()}
        for ours in ("authgate", "authgate, group_base_dn"):
            ratios = ", ".join(f"{p50[ours] / p50[raw]:.2f}x {raw}"
                               for raw in ("raw naive", "raw + nodelay", "raw + nodelay + groups"))
            print(f"  p50 ratio {ours}: {ratios}")
    print("\ntarget (issue 3): authgate p50 <= 1.3x the raw ldap3 figure")
    return valid


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dc-dir", type=Path, help="a DC started by scripts/samba-dc.sh")
    parser.add_argument("-n", type=int, default=200, help="logins per variant and concurrency")
    args = parser.parse_args()
    if args.dc_dir and running(args.dc_dir):
        return 0 if run(read_env(args.dc_dir / "dc.env"), args.n) else 1
    dc_dir = Path(tempfile.mkdtemp(prefix="authgate-bench-dc-"))
    subprocess.run(["bash", str(SCRIPT), "start", str(dc_dir)], check=True)
    try:
        return 0 if run(read_env(dc_dir / "dc.env"), args.n) else 1
    finally:
        subprocess.run(["bash", str(SCRIPT), "stop", str(dc_dir)], check=False)
        shutil.rmtree(dc_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
