"""Interleaved A/B of audit verification and export between two checkouts (not a test).

The machine is shared and its speed drifts by 10-20% within minutes, so two figures taken
apart compare little: this fills one database with ``--records`` sealed records (as
``benchmarks/audit.py`` does) and measures checkout A and checkout B in turn (A B, then
B A, ...), each run a fresh process that imports that checkout's ``authgate``. For each
operation it prints both sides' best and median rate by wall time and by the CPU time of
the run's processes (which varies less while other sessions share the cores), B's median
over A's, and the load average before and after.

Run: ``.venv/bin/python benchmarks/audit_ab.py --a /work/main --b . [--records 1000000]
[--rounds 4] [--jobs 1] [--only verify,csv,jsonl]``

A run that fails (an error, a record count other than ``--records``, a run that imported
another ``authgate`` than its checkout's) ends the comparison with its output: no figure is
printed for work that did not succeed.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from authgate.storage.engine import make_engine, migrate  # noqa: E402
from authgate.storage.sql_audit import SqlAuditStore  # noqa: E402
from benchmarks.audit import SECRET, fill  # noqa: E402

#: one measured run, in a fresh process: argv = checkout, url, operation, jobs, secret
RUN = """
import json, os, resource, sys, time
sys.path.insert(0, sys.argv[1])
from datetime import UTC, datetime
import authgate
from authgate.audit.chain import Keyring
from authgate.audit.checkpoints import HmacSigner, TrustedKeys
from authgate.audit.export_parallel import write_export
from authgate.audit.verify import verify_store
from authgate.storage.audit_rows import AuditFilter
from authgate.storage.engine import make_engine
from authgate.storage.sql_audit import SqlAuditStore

def cpu():
    me, kids = (resource.getrusage(w) for w in (resource.RUSAGE_SELF,
                                                resource.RUSAGE_CHILDREN))
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime

url, op, jobs = sys.argv[2], sys.argv[3], int(sys.argv[4])
keyring = Keyring.from_secrets(sys.argv[5])
store = SqlAuditStore(make_engine(url))
wall, used = time.perf_counter(), cpu()
if op == "verify":
    trusted = TrustedKeys.build(keyring=keyring, signer=None)
    rows = verify_store(store, keyring=keyring, trusted=trusted, jobs=jobs).records
else:
    with open(os.devnull, "wb") as sink:
        rows = write_export(sink, store, AuditFilter(), fmt=op, signer=HmacSigner(keyring),
                            generated_at=datetime.now(UTC), jobs=jobs)
print(json.dumps({"rows": rows, "wall": time.perf_counter() - wall, "cpu": cpu() - used,
                  "authgate": os.path.dirname(authgate.__file__)}))
"""


def measure(tree: Path, url: str, op: str, jobs: int, records: int) -> tuple[float, float]:
    """One run of ``op`` on ``tree``'s code: (records/s by wall time, by CPU time)."""
    done = subprocess.run([sys.executable, "-c", RUN, str(tree), url, op, str(jobs), SECRET],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"INVALID: {op} on {tree} failed:\n{done.stderr[-2000:]}")
    got = json.loads(done.stdout.splitlines()[-1])
    if got["rows"] != records:
        sys.exit(f"INVALID: {op} on {tree} read {got['rows']:,} records, not {records:,}")
    if Path(got["authgate"]).resolve() != (tree / "authgate").resolve():
        sys.exit(f"INVALID: the run for {tree} imported {got['authgate']}")
    return records / got["wall"], records / got["cpu"]


def report(op: str, jobs: int, runs: dict[str, list[tuple[float, float]]]) -> None:
    print(f"{op}, {jobs} job{'s' if jobs > 1 else ''}:")
    medians = {}
    for side, rates in runs.items():
        parts = []
        for i, kind in enumerate(("wall", "cpu")):
            values = [r[i] for r in rates]
            medians[side, kind] = statistics.median(values)
            parts.append(f"{kind} best {max(values):,.0f} median {medians[side, kind]:,.0f}")
        print(f"  {side}: {'; '.join(parts)} /s  (runs by wall: "
              f"{', '.join(f'{r[0]:,.0f}' for r in rates)})")
    print("  B/A, medians: " + ", ".join(
        f"{kind} {medians['B', kind] / medians['A', kind] * 100 - 100:+.1f}%"
        for kind in ("wall", "cpu")))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--a", type=Path, required=True, help="checkout A (the baseline)")
    parser.add_argument("--b", type=Path, required=True, help="checkout B")
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--only", default="verify,csv,jsonl")
    args = parser.parse_args()
    sides = {"A": args.a.resolve(), "B": args.b.resolve()}
    with tempfile.TemporaryDirectory(prefix="authgate-ab-") as tmp:
        url = f"sqlite:///{tmp}/bulk.db"
        migrate(url)
        fill(SqlAuditStore(make_engine(url)), args.records)
        print(f"A = {sides['A']}, B = {sides['B']}; {args.records:,} sealed records, "
              f"{args.rounds} rounds; load average {os.getloadavg()[0]:.2f}")
        began = time.perf_counter()
        for op in args.only.split(","):
            runs: dict[str, list[tuple[float, float]]] = {"A": [], "B": []}
            for n in range(args.rounds):
                for side in ("A", "B") if n % 2 == 0 else ("B", "A"):
                    runs[side].append(measure(sides[side], url, op, args.jobs,
                                              args.records))
            report(op, args.jobs, runs)
        print(f"load average {os.getloadavg()[0]:.2f} after {time.perf_counter() - began:.0f}s")


if __name__ == "__main__":
    main()
