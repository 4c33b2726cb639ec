"""Decision time of ``authgate.policy.decide`` with 10 to 10,000 rules (not a test).

Run: ``.venv/bin/python benchmarks/policy.py [--quick]``

Two kinds of generated rule sets, loaded through the real loader from a temporary directory:

* ``indexed``: one domain per block of 5 rules (``appN.city.test``: admin path for a group,
  API methods, a network rule, a deny, a catch-all mfa rule), as a city's policy looks.
  The host index means a decision only visits its own block, so time should stay flat.
* ``prefix``: the same number of rules with no ``domains``, each keyed by an anchored path
  regex (``^/appN/``): indexed by literal path prefix, so also nearly flat.
* ``scan``: as ``prefix`` but case-insensitive (``(?i)^/appN/``). The prefix index used to
  skip these (every decision walked the rules in order: 3.1 ms at 10,000 rules); it now
  indexes them by their prefix in ASCII lower case (issue 20 item 4), so also flat.
  Measured: 7.9 µs at 10,000 rules, as the other two kinds.

For each set, the request hits the *last* block (worst position) and the median of several
timeit repeats is reported in microseconds per decision. Pure and in process (no HTTP), so
there is no non-2xx count: a decision is a value, printed beside its time.
"""

from __future__ import annotations

import argparse
import ipaddress
import statistics
import sys
import tempfile
import time
import timeit
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from authgate.core.values import Level, Resource  # noqa: E402
from authgate.policy import PolicySet, Subject, decide
from authgate.policy.files import load_policy_set  # noqa: E402

NOW = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)
GLOBALS = "version: 1\ndefaults: {tz: America/Toronto}\nnetworks: {city-lan: [10.0.0.0/8]}\n"


def indexed_rules(count: int) -> str:
    lines = ["version: 1", "rules:"]
    for n in range(count // 5):
        host = f"app{n}.city.test"
        lines += [
            f"  - {{id: a{n}-admin, domains: [{host}], paths: ['^/admin(/|$)'],"
            f" subjects: ['group:ops{n}'], level: phishing_resistant}}",
            f"  - {{id: a{n}-api, domains: [{host}], paths: ['^/api/'],"
            " methods: [POST, PUT], level: mfa}",
            f"  - {{id: a{n}-lan, domains: [{host}], paths: ['^/internal/'],"
            " networks: [city-lan], level: mfa}",
            f"  - {{id: a{n}-deny, domains: [{host}], paths: ['^/private/'], level: deny}}",
            f"  - {{id: a{n}-all, domains: [{host}], subjects: ['group:staff'], level: mfa,"
            " hours: [{from: '06:00', to: '22:00'}]}",
        ]
    return "\n".join(lines) + "\n"


def prefix_rules(count: int) -> str:
    lines = ["version: 1", "rules:"]
    for n in range(count):
        lines.append(
            f"  - {{id: r{n}, paths: ['^/app{n}/'], subjects: ['group:staff'], level: mfa}}"
        )
    return "\n".join(lines) + "\n"


def scan_rules(count: int) -> str:
    lines = ["version: 1", "rules:"]
    for n in range(count):
        lines.append(
            f"  - {{id: r{n}, paths: ['(?i)^/app{n}/'], subjects: ['group:staff'], level: mfa}}"
        )
    return "\n".join(lines) + "\n"


def build(rules_yaml: str) -> tuple[PolicySet, float]:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        (directory / "00-globals.yaml").write_text(GLOBALS)
        (directory / "10-rules.yaml").write_text(rules_yaml)
        start = time.perf_counter()
        ps = load_policy_set(directory)
        return ps, time.perf_counter() - start


def median_us(
    ps: PolicySet, resource: Resource, subject: Subject, repeat: int, number: int
) -> float:
    def call() -> None:
        decide(ps, subject=subject, resource=resource, now=NOW)

    call()  # warm the host cache, as a running gateway would be
    times = timeit.repeat(call, repeat=repeat, number=number)
    return statistics.median(times) / number * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    args = parser.parse_args()
    repeat, number = (3, 2000) if args.quick else (7, 10000)
    subject = Subject(
        username="alice",
        groups=frozenset({"staff", "ops1"}),
        level=Level.MFA,
        auth_time=NOW - timedelta(minutes=10),
        last_seen=NOW - timedelta(minutes=1),
        ip=ipaddress.ip_address("10.1.2.3"),
    )
    print(f"{'rules':>7} | {'kind':<8} | {'load s':>7} | {'µs/decision':>11} | decision")
    print("-" * 62)
    for count in (10, 100, 1_000, 10_000):
        for kind, generate, url_path, host in (
            ("indexed", indexed_rules, "/reports/2026", f"app{count // 5 - 1}.city.test"),
            ("prefix", prefix_rules, f"/app{count - 1}/page", "any.city.test"),
            ("scan", scan_rules, f"/app{count - 1}/page", "any.city.test"),
        ):
            ps, load_s = build(generate(count))
            resource = Resource("https", host, url_path, "GET")
            us = median_us(
                ps,
                resource,
                subject,
                repeat,
                number if count < 10_000 or kind != "scan" else number // 20,
            )
            d = decide(ps, subject=subject, resource=resource, now=NOW)
            print(
                f"{count:>7} | {kind:<8} | {load_s:>7.2f} | {us:>11.2f} | "
                f"{d.verdict.value} {d.rule_id}"
            )


if __name__ == "__main__":
    main()
