"""Can response time tell an unknown user, a wrong password and a banned source apart?
(not a test; issue 7 §6, ASVS 2.2.1 / OWASP authentication-response guidance)

Run: ``.venv/bin/python benchmarks/enumeration.py [--n 60] [--ad DIR | --start-ad]``

Through the real login page (Flask test client: POST /login, CSRF token fetched untimed),
with the real regulator on SQLite, for each directory:

* ``file``: the users file in a temporary directory (argon2id defaults; unknown users
  verify a dummy hash, so the directory itself is balanced);
* ``ad``: the Samba AD DC whose ``dc.env`` is in DIR (``--ad``), or one started here
  (``--start-ad``, only if ports 389/636 are free). An unknown AD user costs a search but
  no bind, a banned source costs no directory call at all.

Each kind is measured round-robin (so load noise hits all three alike), once with the
failure floor off and once on. Printed: the median per kind and the differences to the wrong
password, in ms. Compare differences within one run only (2 shared cores: noisy). Every
answer is checked (401 for each refusal, 303 for the untimed sign-ins): each mode prints its
count of unexpected answers, and with any, INVALID instead of its medians (exit status 1).
"""
from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from authgate.composition.root import Services, build_services  # noqa: E402
from authgate.core.clock import SystemClock  # noqa: E402
from authgate.directory.file import FileDirectory  # noqa: E402
from authgate.regulation.timing import Floor, NoFloor  # noqa: E402
from authgate.storage.engine import migrate  # noqa: E402
from authgate.web import create_app  # noqa: E402
from benchmarks.loadgen import invalid  # noqa: E402
from tests.conftest import make_settings  # noqa: E402
from tests.regulation.conftest import policy_dir  # noqa: E402

PASSWORD = "correct horse battery staple"


class Bench:
    def __init__(self, services: Services, user: str, password: str) -> None:
        self.services = services
        self.app = create_app({"services": services, "TESTING": True})
        self.user, self.password = user, password
        self.counter = 0
        #: answers other than the one expected (401 for every refusal, 303 for a sign-in)
        self.unexpected: Counter[str] = Counter()
        self.failed = False

    def post(self, ip: str, username: str, password: str, *, expect: int = 401) -> float:
        env = {"REMOTE_ADDR": ip}
        client = self.app.test_client()  # a fresh cookie jar: never signed in already
        page = client.get("/login", environ_base=env).get_data(as_text=True)
        match = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert match, "no CSRF token"
        started = time.perf_counter()
        answer = client.post("/login", data={"csrf_token": match.group(1), "username": username,
                                             "password": password, "rd": ""}, environ_base=env)
        elapsed = time.perf_counter() - started
        if answer.status_code != expect:
            self.unexpected[f"{answer.status_code} where {expect} was due"] += 1
        return elapsed

    def next_ip(self) -> str:
        self.counter += 1
        return f"10.{self.counter // 65536 % 256}.{self.counter // 256 % 256}.{self.counter % 256}"

    def unknown(self) -> float:
        ip = self.next_ip()
        return self.post(ip, f"nobody{self.counter}", f"wrong password u{self.counter}")

    def wrong(self) -> float:
        """A real failed bind from the user's familiar IP, then (untimed) a success, which
        resets AD's badPwdCount and authgate's counters, so AD's budget is never exhausted."""
        elapsed = self.post("192.168.1.10", self.user, f"wrong password {self.counter}")
        self.counter += 1
        self.post("192.168.1.10", self.user, self.password, expect=303)
        return elapsed

    def banned(self) -> float:
        return self.post("203.0.113.66", self.user, f"wrong password {self.counter}")

    def ban_source(self) -> None:
        for n in range(12):  # a spray from 203.0.113.66 over unknown names bans it
            self.post("203.0.113.66", f"sprayed{n}", "Winter2026!")
        bans = [b.subject for b in self.services.regulator.active_bans()]  # type: ignore[attr-defined]
        assert "ip:203.0.113.66" in bans, bans


def measure(bench: Bench, n: int, *, floor: Floor) -> dict[str, float]:
    bench.services.regulator.floor = floor  # type: ignore[attr-defined]
    kinds: dict[str, Callable[[], float]] = {"wrong password": bench.wrong,
                                             "unknown user": bench.unknown,
                                             "banned": bench.banned}
    samples: dict[str, list[float]] = {k: [] for k in kinds}
    for _ in range(n):
        for kind, run in kinds.items():
            samples[kind].append(run())
    return {k: statistics.median(v) * 1000 for k, v in samples.items()}


def report(name: str, bench: Bench, n: int) -> bool:
    """Prints the medians of both modes; False (and INVALID) where an answer was unexpected."""
    bench.post("192.168.1.10", bench.user, bench.password, expect=303)  # the familiar IP
    bench.ban_source()
    for _ in range(5):  # warm up (and teach the floor a few real binds)
        bench.wrong()
    real: Floor = bench.services.regulator.floor  # type: ignore[attr-defined]
    for padded in (False, True):  # the first counts the set-up's answers too
        medians = measure(bench, n, floor=real if padded else NoFloor())
        refused = invalid(bench.unexpected)
        print(f"\n{name}: failure floor {'on' if padded else 'off'}: "
              f"{sum(bench.unexpected.values())} unexpected answers")
        bench.unexpected.clear()
        if refused is not None:
            print(f"  {refused}")
            bench.failed = True
            continue
        base = medians["wrong password"]
        floor = bench.services.regulator.floor.floor() * 1000  # type: ignore[attr-defined]
        print(f"  {f'floor {floor:.1f} ms, ' if padded else ''}n={n} each")
        for kind, value in medians.items():
            diff = "" if kind == "wrong password" else f"  ({value - base:+.1f} ms)"
            print(f"  {kind:<15} median {value:7.1f} ms{diff}")
    return not bench.failed


def services_for(tmp: Path, directory: Any, users_file: Path) -> Services:
    settings = make_settings(tmp, users_file, policy={
        "path": str(policy_dir(tmp, max_failures_per_user=2, max_failures_per_ip=10000)),
        "require_approval": False})
    migrate(settings.storage.url)
    return build_services(settings, clock=SystemClock(), directory=directory)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=60, help="requests per kind and mode")
    parser.add_argument("--ad", type=Path, help="directory of a running DC (its dc.env)")
    parser.add_argument("--start-ad", action="store_true", help="start a Samba DC here")
    args = parser.parse_args()
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        users_file = tmp / "users.yaml"
        FileDirectory(users_file).add_user("alice", PASSWORD, display_name="Alice")
        (tmp / "file").mkdir()
        valid = [report("file directory", Bench(services_for(tmp / "file", None, users_file),
                                                "alice", PASSWORD), args.n)]
        facts = None
        if args.ad:
            from tests.ad.samba import DcFacts, read_env
            facts = DcFacts(args.ad, read_env(args.ad / "dc.env"))
        elif args.start_ad:
            from tests.ad.samba import samba_dc
            facts = stack.enter_context(samba_dc(tmp / "dc"))
        if facts is None:
            print("\n(no AD: pass --ad DIR of a running DC, or --start-ad)")
            return 0 if all(valid) else 1
        from authgate.config.settings import LdapDirectorySettings, Secret
        from authgate.directory.ldap import LdapDirectory
        ldap = LdapDirectory(settings=LdapDirectorySettings(
            urls=(facts.ldaps_url,), base_dn=facts.base_dn, bind_dn=facts.bind_dn,
            bind_password=Secret(facts.bind_password), ca_file=facts.ca_file,
            upn_suffix=facts.upn_suffix, netbios_domain=facts.domain))
        (tmp / "ad").mkdir()
        valid.append(report("Samba AD", Bench(services_for(tmp / "ad", ldap, users_file),
                                              "alice", facts.password("alice")), args.n))
        ldap.close()
    return 0 if all(valid) else 1


if __name__ == "__main__":
    sys.exit(main())
