"""Retention: remove records older than the configured age so the rest still verifies.

The cut is signed first: a ``purge`` checkpoint records, for each chain, the sequence number
and MAC of the last record to be removed (the anchor). Verification then starts each chain
at its anchor instead of its first record, so a purge is told apart from an attacker cutting
the head of a chain. The deletion is per chain and by prefix (records up to the anchor),
and the purge itself is an ``audit.purge`` record. If the deletion stops half-way, running
the purge again finishes it.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from authgate.audit.checkpoints import Checkpoint
from authgate.audit.log import AuditLog
from authgate.core.values import AuditEvent, Outcome
from authgate.storage.timeconv import to_micros


@dataclass(frozen=True)
class PurgeResult:
    cut: datetime
    deleted: int
    chains: int
    checkpoint: Checkpoint | None


def purge_before(log: AuditLog, *, cut: datetime) -> PurgeResult:
    """Remove, chain by chain, every record up to the last one written before ``cut``."""
    store = log.store
    points = store.purge_points(to_micros(cut))
    if not points:
        return PurgeResult(cut=cut, deleted=0, chains=0, checkpoint=None)
    anchors = {p.chain_id: (int(p.seq), p.mac) for p in points}
    checkpoint = log.checkpoint(kind="purge", anchors=anchors, cut=cut)
    deleted = sum(store.delete_chain_prefix(p.chain_id, int(p.id)) for p in points)
    log.record(AuditEvent(
        event="audit.purge", outcome=Outcome.SUCCESS, reason="retention",
        detail=(("checkpoint", str(checkpoint.seq)), ("cut", cut.isoformat()),
                ("deleted", str(deleted)), ("chains", str(len(points))))))
    return PurgeResult(cut=cut, deleted=deleted, chains=len(points), checkpoint=checkpoint)
