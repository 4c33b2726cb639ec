"""Replay rate of ``authgate policy preview``'s pure core (not a test).

Run: ``.venv/bin/python benchmarks/preview.py [--decisions 1000000] [--rules 1000]``

Generates stored-record-shaped rows (the columns ``audited_decision`` reads, ``detail`` as
stored JSON text) for a 1,000-rule ``indexed`` policy (``benchmarks/policy.py``), then times
parsing plus replay under a pending copy in which one block of rules changes level. The rows
are generated lazily, so the peak resident memory printed at the end shows the builder's own
footprint (flat: it keeps groups and affected users, not records). The database read is not
included (``authgate audit export`` measures that path). One process; the 100k/s target of
issue 19 is for 2 jobs.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from authgate.policy.files import load_policy_set  # noqa: E402
from authgate.policy.preview import PreviewBuilder, audited_decision  # noqa: E402
from benchmarks.policy import GLOBALS, indexed_rules  # noqa: E402

START = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
PATHS = ("/", "/admin/x", "/api/v1", "/internal/r", "/private/p")


def rows(count: int, blocks: int) -> Iterator[tuple[dict[str, Any], datetime]]:
    detail = json.dumps({"auth_age": "300", "groups": json.dumps(["staff", "ops1"]),
                         "idle": "60", "level": "mfa"}, sort_keys=True)
    for i in range(count):
        yield ({"id": i + 1, "event": "verify", "outcome": "allow", "username": f"u{i % 5000}",
                "client_ip": f"10.0.{i % 250}.{i % 200 + 1}", "host": f"app{i % blocks}.city.test",
                "path": PATHS[i % len(PATHS)], "method": "GET", "rule_id": "x",
                "detail": detail}, START + timedelta(seconds=i))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--decisions", type=int, default=1_000_000)
    parser.add_argument("--rules", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        pending = Path(tmp)
        (pending / "00-globals.yaml").write_text(GLOBALS)
        text = indexed_rules(args.rules).replace(  # the change under review
            "{id: a1-all, domains: [app1.city.test], subjects: ['group:staff'], level: mfa",
            "{id: a1-all, domains: [app1.city.test], subjects: ['group:staff'], "
            "level: phishing_resistant")
        (pending / "10-rules.yaml").write_text(text)
        ps = load_policy_set(pending)
    builder = PreviewBuilder(ps)
    began = time.perf_counter()
    builder.add_all(audited_decision(row, at) for row, at in rows(args.decisions,
                                                                  args.rules // 5))
    elapsed = time.perf_counter() - began
    report = builder.report()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{args.decisions} decisions, {len(ps.rules)} rules: {elapsed:.1f} s, "
          f"{args.decisions / elapsed:,.0f} decisions/s (one process); "
          f"{report.changed} changed; peak RSS {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
