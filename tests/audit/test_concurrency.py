"""Several threads and processes writing at once keep every chain valid."""
from __future__ import annotations

import multiprocessing
import threading

from sqlalchemy import Engine

from authgate.audit.chain import FORMAT_VERSION, GENESIS, Keyring, seal
from authgate.audit.checkpoints import Ed25519Signer, TrustedKeys
from authgate.audit.log import AuditLog
from authgate.storage.audit_rows import SEALED_FIELDS, detail_json
from authgate.storage.sql_audit import SqlAuditStore
from tests.audit.conftest import TickingClock, check, event, write


def bulk_fill(log: AuditLog, count: int, *, chain_id: str = "b" * 32) -> None:
    """Sealed records written in big transactions (fast fixtures for volume tests)."""
    store, keyring = log.store, log.keyring
    assert isinstance(store, SqlAuditStore) and keyring is not None
    head = store.head_of(chain_id)
    seq, prev = head if head else (0, GENESIS)
    cols = (*SEALED_FIELDS, "mac")
    sql = (f"INSERT INTO audit_events ({', '.join(cols)}) VALUES "
           f"({', '.join([store.mark] * len(cols))})")
    with store.cursor() as cur:
        if head is None:
            cur.execute(f"INSERT INTO audit_chains VALUES ({', '.join([store.mark] * 4)})",
                        (chain_id, 0, "bulk", keyring.current_id))
        rows = []
        for n in range(count):
            seq += 1
            e = event(n)
            values = (FORMAT_VERSION, chain_id, seq, keyring.current_id, prev,
                      1_767_225_600_000_000 + seq, e.event, e.outcome.value, e.reason,
                      e.username, e.client_ip, e.user_agent, e.host, e.path, e.method,
                      e.rule_id, e.policy_digest, e.request_id, detail_json(e.detail))
            prev = seal(keyring.current, values)
            rows.append((*values, prev))
        cur.executemany(sql, rows)


def test_threads_share_lanes(engine: Engine, keyring: Keyring, signer: Ed25519Signer,
                             trusted: TrustedKeys) -> None:
    log = AuditLog(SqlAuditStore(engine), TickingClock(), keyring=keyring, signer=signer,
                   lanes=3, checkpoint_every=150)
    threads = [threading.Thread(target=write, args=(log, 100)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    trail = check(log, keyring, trusted)
    assert sum(c.records for c in trail.chains) == trail.records >= 800
    assert len(trail.chains) <= 3 and trail.checkpoints >= 1


def _child(url: str, secret: str, count: int) -> None:
    from authgate.storage.engine import make_engine

    engine = make_engine(url)
    log = AuditLog(SqlAuditStore(engine), TickingClock(), keyring=Keyring.from_secrets(secret))
    write(log, count)
    log.close()


def _inherited(log: AuditLog, count: int) -> None:
    """A forked worker using the parent's log object: it must start its own chain."""
    write(log, count)
    log.close()


def test_processes_write_their_own_chains(engine: Engine, keyring: Keyring,
                                          audit_log: AuditLog, trusted: TrustedKeys) -> None:
    from tests.audit.conftest import AUDIT_SECRET

    write(audit_log, 5)  # the parent's chain exists before the fork
    url = engine.url.render_as_string(hide_password=False)
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_child, args=(url, AUDIT_SECRET, 200)) for _ in range(2)]
    procs.append(ctx.Process(target=_inherited, args=(audit_log, 200)))  # gunicorn preload
    for p in procs:
        p.start()
    write(audit_log, 5)
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    audit_log.checkpoint()
    trail = check(audit_log, keyring, trusted, jobs=2)
    assert trail.records == 3 * 201 + 11
    assert sorted(c.records for c in trail.chains) == [11, 201, 201, 201]
    assert sum(c.closed for c in trail.chains) == 3
