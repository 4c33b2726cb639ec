"""Audit trail throughput (not a test). Targets (issue 5): ≥ 10,000 durable appends/s on
SQLite with 2 writer processes, ≥ 300,000 rows/s export, ≥ 300,000 records/s verify at
1,000,000 records, export memory flat.

Run: ``.venv/bin/python benchmarks/audit.py [--records 1000000] [--appends 20000] [--runs 3]``

* appends: N worker processes (fork, like gunicorn workers), each with its own
  ``AuditLog`` (own chain), appending one ``verify``-sized record per call, each its own
  committed transaction (WAL, synchronous=NORMAL: durable across process crashes).
* verify / export: the store is filled to ``--records`` with sealed rows, then verified
  (1 and 2 jobs) and exported as CSV and JSONL to /dev/null (``authgate audit export``'s
  ``write_export``, 1 and 2 jobs) in a child process whose peak RSS is reported, and its
  workers', at 10% and 100% of the records (flat memory: similar peaks). Each verify and
  full export runs ``--runs`` times and prints the best and the median rate.

No HTTP, so no non-2xx count: everything runs in process, and a failure is not counted but
raised (``verify_store`` raises on any damage, an append or export that fails ends the run),
so no figure is printed for work that did not succeed.
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from authgate.audit.chain import FORMAT_VERSION, GENESIS, Keyring, seal  # noqa: E402
from authgate.audit.checkpoints import HmacSigner, TrustedKeys  # noqa: E402
from authgate.audit.export_parallel import write_export  # noqa: E402
from authgate.audit.log import AuditLog  # noqa: E402
from authgate.audit.verify import verify_store  # noqa: E402
from authgate.core.clock import SystemClock  # noqa: E402
from authgate.core.values import AuditEvent, Outcome  # noqa: E402
from authgate.storage.audit_rows import SEALED_FIELDS, AuditFilter  # noqa: E402
from authgate.storage.engine import make_engine, migrate  # noqa: E402
from authgate.storage.sql_audit import SqlAuditStore  # noqa: E402

SECRET = "benchmark-" + "k" * 40
KEYRING = Keyring.from_secrets(SECRET)
EVENT = AuditEvent(event="verify", outcome=Outcome.ALLOW, reason="allowed", username="alice",
                   client_ip="10.1.2.3", user_agent="Mozilla/5.0 (X11; Linux x86_64) "
                   "AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
                   host="wiki.city.test", path="/wiki/Budget_2026/section?id=7",
                   method="GET", rule_id="staff-apps", policy_digest="ab" * 32,
                   request_id="0123456789abcdef", detail=(("level", "mfa"),))


def _appender(url: str, count: int, start: multiprocessing.synchronize.Event,  # type: ignore[name-defined]
              done: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    log = AuditLog(SqlAuditStore(make_engine(url)), SystemClock(), keyring=KEYRING,
                   signer=HmacSigner(KEYRING))
    log.record(EVENT)  # chain registered, connection open
    start.wait()
    began = time.perf_counter()
    for _ in range(count):
        log.record(EVENT)
    done.put(time.perf_counter() - began)


def _raw_insert(url: str, count: int, start: multiprocessing.synchronize.Event,  # type: ignore[name-defined]
                done: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    """Baseline: the same row, unsealed, through sqlite3 directly (one commit each)."""
    conn = make_engine(url).raw_connection()
    cols = (*SEALED_FIELDS, "mac")
    sql = f"INSERT INTO audit_events ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
    e = EVENT
    row = (1, "r" * 32, 0, "k", "0" * 64, 0, e.event, e.outcome.value, e.reason, e.username,
           e.client_ip, e.user_agent, e.host, e.path, e.method, e.rule_id, e.policy_digest,
           e.request_id, '{"level": "mfa"}', "0" * 64)
    start.wait()
    began = time.perf_counter()
    for _ in range(count):
        conn.cursor().execute(sql, row)
        conn.commit()
    done.put(time.perf_counter() - began)


def bench_appends(url: str, workers: int, count: int, *, raw: bool = False) -> None:
    ctx = multiprocessing.get_context("fork")
    start, done = ctx.Event(), ctx.Queue()
    target = _raw_insert if raw else _appender
    procs = [ctx.Process(target=target, args=(url, count, start, done))
             for _ in range(workers)]
    for p in procs:
        p.start()
    time.sleep(1.0)
    began = time.perf_counter()
    start.set()
    for p in procs:
        p.join()
    wall = time.perf_counter() - began
    each = [done.get() for _ in procs]
    label = "raw WAL insert baseline" if raw else "sealed appends"
    print(f"{label}: {workers} processes x {count}: {workers * count / wall:,.0f}/s "
          f"(wall {wall:.2f}s; per process {', '.join(f'{count / t:,.0f}/s' for t in each)})")


def fill(store: SqlAuditStore, records: int) -> None:
    cols = (*SEALED_FIELDS, "mac")
    sql = f"INSERT INTO audit_events ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
    chain, prev, e, base = "c" * 32, GENESIS, EVENT, 1_767_225_600_000_000
    with store.cursor() as cur:
        cur.execute("INSERT INTO audit_chains VALUES (?, ?, ?, ?)",
                    (chain, base, "bench", KEYRING.current_id))
    for start in range(0, records, 50_000):
        rows = []
        for seq in range(start + 1, min(records, start + 50_000) + 1):
            values = (FORMAT_VERSION, chain, seq, KEYRING.current_id, prev, base + seq * 1000,
                      e.event, e.outcome.value, e.reason, e.username if seq % 3 else "bob",
                      e.client_ip, e.user_agent, e.host, e.path, e.method, e.rule_id,
                      e.policy_digest, e.request_id, '{"level": "mfa"}')
            prev = seal(KEYRING.current, values)
            rows.append((*values, prev))
        with store.cursor() as cur:
            cur.executemany(sql, rows)


def _spread(rates: list[float], unit: str) -> str:
    """Best and median of the runs: this VM's speed varies by ±20% from run to run."""
    if len(rates) == 1:
        return f"{rates[0]:,.0f} {unit}"
    return (f"best {max(rates):,.0f}, median {statistics.median(rates):,.0f} {unit} "
            f"({len(rates)} runs)")


def bench_verify(store: SqlAuditStore, jobs: int, runs: int) -> None:
    trusted = TrustedKeys.build(keyring=KEYRING, signer=None)
    rates, records = [], 0
    for _ in range(runs):
        began = time.perf_counter()
        trail = verify_store(store, keyring=KEYRING, trusted=trusted, jobs=jobs)
        rates.append(trail.records / (time.perf_counter() - began))
        records = trail.records
    print(f"verify: {records:,} records, jobs={jobs}: {_spread(rates, 'records/s')}")


def _export(url: str, fmt: str, limit_ts: int | None, jobs: int,
            out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    store = SqlAuditStore(make_engine(url))
    until = datetime.fromtimestamp(limit_ts / 1e6, UTC) if limit_ts else None
    began = time.perf_counter()
    with open(os.devnull, "wb") as sink:
        rows = write_export(sink, store, AuditFilter(until=until), fmt=fmt,  # type: ignore[arg-type]
                            signer=HmacSigner(KEYRING), generated_at=datetime.now(UTC),
                            jobs=jobs)
    took = time.perf_counter() - began
    out.put((rows, took, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
             resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))


def bench_export(url: str, fmt: str, records: int, share: float, jobs: int,
                 runs: int = 1) -> None:
    ctx = multiprocessing.get_context("spawn")  # a clean process: its peak RSS is its own
    limit = 1_767_225_600_000_000 + int(records * share) * 1000 + 1 if share < 1 else None
    rates, rss, workers_rss, rows = [], 0, 0, 0
    for _ in range(runs):
        out = ctx.Queue()
        proc = ctx.Process(target=_export, args=(url, fmt, limit, jobs, out))
        proc.start()
        rows, took, peak, workers_peak = out.get()
        proc.join()
        rates.append(rows / took)
        rss, workers_rss = max(rss, peak), max(workers_rss, workers_peak)
    workers = f", each worker {workers_rss / 1024:.1f} MiB" if jobs > 1 else ""
    print(f"export {fmt}, jobs={jobs}: {rows:,} rows: {_spread(rates, 'rows/s')}, "
          f"peak RSS {rss / 1024:.1f} MiB{workers}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--appends", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--runs", type=int, default=3, help="runs of each verify and export")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="authgate-bench-") as tmp:
        url = f"sqlite:///{tmp}/appends.db"
        migrate(url)
        for workers in (1, args.workers):
            bench_appends(url, workers, args.appends, raw=True)
            bench_appends(url, workers, args.appends)
        url = f"sqlite:///{tmp}/bulk.db"
        migrate(url)
        store = SqlAuditStore(make_engine(url))
        began = time.perf_counter()
        fill(store, args.records)
        print(f"filled {args.records:,} sealed records in {time.perf_counter() - began:.1f}s")
        for jobs in (1, 2):
            bench_verify(store, jobs, args.runs)
        for fmt in ("csv", "jsonl"):
            for jobs in (1, 2):
                bench_export(url, fmt, args.records, 0.1, jobs)
                bench_export(url, fmt, args.records, 1.0, jobs, args.runs)


if __name__ == "__main__":
    main()
