"""Replay rate of ``authgate policy preview``'s pure core (not a test).

Run: ``.venv/bin/python benchmarks/preview.py [--decisions 1000000] [--rules 1000] [--jobs 2]``

Generates stored-record-shaped rows (the columns ``audited_decision`` reads, ``detail`` as
stored JSON text) for a 1,000-rule ``indexed`` policy (``benchmarks/policy.py``), then times
parsing plus replay under a pending copy in which one block of rules changes level. The rows
are generated lazily, so the peak resident memory printed at the end shows the builder's own
footprint (flat: it keeps groups and affected users, not records). The database read is not
included (``authgate audit export`` measures that path). ``--jobs`` splits the records into
id ranges replayed in forked workers and merged, as ``authgate policy preview --jobs`` does;
issue 19's target is 100k decisions/s with 2 jobs. Pure and in process (no HTTP), so there is
no non-2xx count to print.
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

from authgate.audit.parallel import collector_paused, parallel_map  # noqa: E402
from authgate.policy.files import load_policy_set  # noqa: E402
from authgate.policy.preview import PreviewBuilder, RecordReader  # noqa: E402
from authgate.policy.preview_report import PreviewPart, PreviewReport, merge_parts  # noqa: E402
from benchmarks.policy import GLOBALS, indexed_rules  # noqa: E402

START = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
PATHS = ("/", "/admin/x", "/api/v1", "/internal/r", "/private/p")


def rows(first: int, stop: int, blocks: int) -> Iterator[tuple[dict[str, Any], datetime]]:
    """Records ``first`` to ``stop - 1`` (a job's id range): sessions of varied ages and
    groups (the detail texts are made once: generating rows is not what is measured)."""
    details = [json.dumps({"auth_age": str(300 + n * 7), "groups": json.dumps(
        ["staff", f"ops{n % 7}"]), "idle": str(n % 900), "level": "mfa", "required": "mfa"},
        sort_keys=True) for n in range(3600)]
    for i in range(first, stop):
        detail = details[i % 3600]
        yield ({"id": i + 1, "event": "verify", "outcome": "allow", "username": f"u{i % 5000}",
                "client_ip": f"10.0.{i % 250}.{i % 200 + 1}", "host": f"app{i % blocks}.city.test",
                "path": PATHS[i % len(PATHS)], "method": "GET", "rule_id": "x",
                "detail": detail}, START + timedelta(seconds=i))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--decisions", type=int, default=1_000_000)
    parser.add_argument("--rules", type=int, default=1000)
    parser.add_argument("--jobs", type=int, default=1)
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
    blocks = args.rules // 5

    def job(span: tuple[int, int]) -> PreviewPart:
        builder, reader = PreviewBuilder(ps), RecordReader()
        builder.add_all(reader.read(row, at) for row, at in rows(*span, blocks))
        return builder.part

    step = -(-args.decisions // args.jobs)
    spans = [(a, min(a + step, args.decisions)) for a in range(0, args.decisions, step)]
    began = time.perf_counter()
    with collector_paused():
        parts = parallel_map(job, spans, jobs=args.jobs)
    report = PreviewReport.of(ps.digest, merge_parts(parts, samples=3))
    elapsed = time.perf_counter() - began
    peak_mb = max(resource.getrusage(who).ru_maxrss for who in (
        resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)) / 1024
    print(f"{args.decisions} decisions, {len(ps.rules)} rules, {args.jobs} job(s): "
          f"{elapsed:.1f} s, {args.decisions / elapsed:,.0f} decisions/s; "
          f"{report.changed} changed; peak RSS per process {peak_mb:.0f} MB")

if __name__ == "__main__":
    main()
