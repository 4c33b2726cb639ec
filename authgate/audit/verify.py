"""``verify_store``: prove the stored trail is the one that was written (ASVS 7.3.3).

One pass over the primary key in keyset batches (constant memory, a few bytes of state per
chain): within a chain, id order is written order, since one lane writes it at a time. Every
record's MAC is recomputed (``verify_scan``). The first damage raises the exception for its
kind, naming the record: an edited or rewritten record (``altered``), a record no writer
made (``forged``), a gap (``missing``), records out of written order (``reordered``), a
chain that does not start at its beginning or a signed retention cut (``head_cut``), a
chain shorter than a signed checkpoint saw (``truncated``), a chain gone
(``chain_deleted``), a record outside any chain (``unsealed``), an unknown chain key
(``unknown_key``), a bad checkpoint (``checkpoint_invalid``), a deleted one
(``checkpoint_deleted``), no record at all (``wiped``).

The verdict is the same whatever ``jobs`` (issue 16): each worker returns its states and
its first damage; the parent joins the parts in id order and re-scans, serially and with
the context of the parts before it, any part whose worker found damage (a worker starts
mid-chain, so what it saw at its start may be an artefact of the split).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from authgate.audit.chain import Keyring
from authgate.audit.checkpoints import (
    Checkpoint,
    TrustedKeys,
    VerifiedCheckpoints,
    verify_checkpoints,
)
from authgate.audit.errors import (
    ChainDamage,
    ChainDeleted,
    ChainHeadCut,
    ChainTruncated,
    CheckpointDeleted,
    CheckpointInvalid,
    RecordForged,
    RecordsMissing,
    RecordsReordered,
    TrailWiped,
)
from authgate.audit.parallel import collector_paused, id_spans, parallel_map
from authgate.audit.verify_scan import (
    CHECKPOINT_EVENT,
    MacOf,
    State,
    States,
    event_of,
    join,
    raise_gap,
    scan,
)
from authgate.storage.audit_rows import SealedRow
from authgate.storage.interfaces import AuditStore
from authgate.storage.timeconv import to_micros

#: a checkpoint younger than this may still be waiting (busy database) for its record
RECORD_GRACE = timedelta(seconds=15)


@dataclass(frozen=True)
class VerifiedChain:
    chain_id: str
    records: int
    first_seq: int
    last_seq: int
    closed: bool  # ends with ``audit.chain.close`` (else: a live writer, or a crash)
    after_checkpoint: int  # records after the newest signed head: chain-protected only
    goes_on: bool = False  # a ranged check: the chain goes on after the range


@dataclass(frozen=True)
class VerifiedTrail:
    records: int
    chains: tuple[VerifiedChain, ...]
    checkpoints: int
    latest_checkpoint: Checkpoint | None
    ranged: bool

    @property
    def unanchored_tail(self) -> int:
        return sum(c.after_checkpoint for c in self.chains)


def verify_store(store: AuditStore, *, keyring: Keyring, trusted: TrustedKeys,
                 since: datetime | None = None, until: datetime | None = None,
                 batch: int = 5000, jobs: int = 1, now: datetime | None = None,
                 ) -> VerifiedTrail:
    """Verify the checkpoints, then every record (or those in ``[since, until)``, with
    each chain's record just outside the range on either side, which must link across
    it: a range emptied by deletion is ``missing``). ``now`` (None: no grace) lets a
    checkpoint just written wait for its sealed record."""
    cps = verify_checkpoints(store.checkpoints(), trusted=trusted)
    #: a registration is not sealed: one that is not text names no chain a writer made
    registered = {c for c in store.registered_chains() if type(c) is str}
    below = store.first_below(1)
    if below is not None:  # a scan from 1 up would never read it
        raise RecordForged(f"a record at id {below}: authgate writes ids from 1 up, so it "
                           "was inserted or moved there by hand", record_id=below)
    try:
        return _verify(store, keyring, cps, registered, since=since, until=until,
                       batch=batch, jobs=jobs, now=now)
    except (RecordsMissing, ChainHeadCut) as exc:
        raise _moved_or(exc, store) from None


def _moved_or(exc: ChainDamage, store: AuditStore) -> ChainDamage:
    """Records taken for deleted that are in the table, at a later id: moved, not gone
    (the outside test of issue 16: a moved record read as ``missing``)."""
    if exc.record_id is None or exc.seq is None:
        return exc
    moved = store.stored_later(exc.chain_id, exc.seq, exc.record_id)
    if moved is None:
        return exc
    return RecordsReordered(f"an earlier record of the chain is stored later, at id {moved}",
                            record_id=exc.record_id, chain_id=exc.chain_id, seq=exc.seq)


def _verify(store: AuditStore, keyring: Keyring, cps: VerifiedCheckpoints,
            registered: set[str], *, since: datetime | None, until: datetime | None,
            batch: int, jobs: int, now: datetime | None) -> VerifiedTrail:
    ranged = since is not None or until is not None
    spans = id_spans(store, since=since, until=until, jobs=jobs)
    job = _Job(store, keyring, cps, registered, batch, spans)
    if ranged:
        job.add_edges(since is not None, until is not None)
    with collector_paused():
        parts = parallel_map(job, list(range(len(spans))), jobs=len(spans))
    states = _settle(parts, job)
    if all(_verify_run_only(st) for st in states.values()):  # before judging each chain
        raise TrailWiped(_wiped_detail(ranged), chain_id="")
    outside, going_on = job.edge_counts(), {row[3] for row in job.after}
    chains = [_finish(states.get(c), c, cps, registered, outside, going_on)
              for c in sorted(set(states) | registered | set(cps.heads) | set(cps.anchors))]
    _check_references(states, cps, ranged=ranged, now=now)
    return VerifiedTrail(records=sum(c.records for c in chains), chains=tuple(chains),
                         checkpoints=cps.count, latest_checkpoint=cps.latest, ranged=ranged)


class _Job:
    """One span's scan; run in the parent or a forked worker (inherits store and keys)."""

    def __init__(self, store: AuditStore, keyring: Keyring, cps: VerifiedCheckpoints,
                 registered: set[str], batch: int, spans: list[tuple[int, int | None]]
                 ) -> None:
        self.store, self.cps, self.registered, self.batch = store, cps, registered, batch
        self.macs: dict[str, MacOf] = {k: m.hexdigest for k, m in keyring.keyed.items()}
        self.spans = spans
        self.before: list[SealedRow] = []
        self.after: list[SealedRow] = []

    def add_edges(self, has_since: bool, has_until: bool) -> None:
        """Each chain's record just before the range and just after it (few rows)."""
        lo, hi = self.spans[0][0], self.spans[-1][1]
        ids = self.store.chain_edges(below=lo if has_since else 1,
                                     above=max(hi, lo - 1) if has_until and hi is not None
                                     else None)
        for rid in ids:
            rows = list(self.store.stream_sealed(first_id=rid, last_id=rid,
                                                 text_event=CHECKPOINT_EVENT))
            (self.before if rid < lo else self.after).extend(rows)

    def edge_counts(self) -> dict[Any, int]:
        counts: dict[Any, int] = {}
        for row in (*self.before, *self.after):
            counts[row[3]] = counts.get(row[3], 0) + 1
        return counts

    def __call__(self, index: int) -> tuple[States, ChainDamage | None]:
        states: States = {}
        try:
            self.run(index, states, mid=index > 0)
        except ChainDamage as exc:
            return states, exc
        return states, None

    def run(self, index: int, states: States, *, mid: bool) -> None:
        """Scan span ``index`` into ``states`` (the first span after the records just
        before the range, the last before those just after it)."""
        lo, hi = self.spans[index]
        common = (self.macs, self.cps, self.registered)
        if index == 0 and self.before:
            scan(self.before, *common, mid=True, states=states)
        rows = self.store.stream_sealed(first_id=lo, last_id=hi, batch=self.batch,
                                        text_event=CHECKPOINT_EVENT)
        scan(rows, *common, mid=mid, states=states)
        if index == len(self.spans) - 1 and self.after:
            scan(self.after, *common, mid=mid, states=states)


def _settle(parts: list[tuple[States, ChainDamage | None]], job: _Job) -> States:
    """Join the parts in id order; a part whose worker found damage is scanned again
    here, continuing the joined states, so the damage reported is the serial one."""
    merged: States = {}
    for index, (states, damage) in enumerate(parts):
        if damage is None:
            merged = join(merged, states, job.cps) if index else states
        elif index == 0:
            raise damage
        else:
            job.run(index, merged, mid=False)
    return merged


def _verify_run_only(st: State) -> bool:
    """No record, or only an ``audit verify`` run's (``audit.verify`` and the close of
    its chain): a wiped trail stays wiped after the verification that found it."""
    return st.count == 0 or (st.count <= 2 and event_of(st.lead) == "audit.verify")


def _wiped_detail(ranged: bool) -> str:
    where = "no record in or around the range" if ranged else "no audit record at all"
    return (f"{where} but audit verify runs: a trail authgate has written to is never "
            "empty (wiped, or a copy of the database file without its -wal file)")


def _finish(st: State | None, chain_id: str, cps: VerifiedCheckpoints,
            registered: set[str], outside: dict[Any, int], going_on: set[Any],
            ) -> VerifiedChain:
    """The end of a chain: a gap left open, a tail shorter than a checkpoint saw, a
    chain gone. A chain that goes on past a verified range is not judged at its end."""
    anchor = cps.anchors.get(chain_id)
    anchor_seq = anchor[0] if anchor else 0
    signed = [s for s in cps.heads.get(chain_id, {}) if s > anchor_seq]
    if st is not None and st.gap is not None:
        raise_gap(st, filled=False)
    last = st.expected - 1 if st else anchor_seq
    count = st.count if st else 0
    goes_on = chain_id in going_on
    if not goes_on and signed and max(signed) > last:
        if count == 0 and anchor is None:
            raise ChainDeleted("a checkpoint saw this chain; no record is left",
                               chain_id=chain_id, seq=max(signed))
        raise ChainTruncated(f"chain ends at {last}; a checkpoint saw {max(signed)}",
                             chain_id=chain_id, seq=last + 1)
    if count == 0 and chain_id in registered and anchor is None:
        raise ChainDeleted("registered chain has no records", chain_id=chain_id)
    newest = max(signed, default=anchor_seq)
    return VerifiedChain(chain_id, count - outside.get(chain_id, 0), st.first if st else 0,
                         last, st is not None and event_of(st.last) == "audit.chain.close",
                         max(0, last - newest) if count else 0, goes_on)


def _check_references(states: States, cps: VerifiedCheckpoints, *, ranged: bool,
                      now: datetime | None) -> None:
    """Each sealed ``audit.checkpoint`` record names its checkpoint: the table must still
    hold it, as it was signed; and the newest checkpoint's own record must survive (it
    is written right after it: without it, the chain was cut back to the signed head)."""
    refs = sorted((ref, st.chain_id) for st in states.values() for ref in st.refs)
    named = set()
    for (rid, seq, cp_seq, key_id, signature), chain_id in refs:
        where: dict[str, Any] = {"record_id": rid, "chain_id": chain_id, "seq": seq}
        held = cps.signatures.get(cp_seq)
        if held is None:
            raise CheckpointDeleted(f"checkpoint #{cp_seq} is gone from audit_checkpoints; "
                                    "its sealed record remains", **where)
        if held != (key_id, signature):
            raise CheckpointInvalid(f"checkpoint #{cp_seq} is not the one its sealed record "
                                    "names", **where)
        named.add(cp_seq)
    latest = cps.latest
    if ranged or latest is None or latest.seq in named:
        return
    if now is not None and latest.ts > to_micros(now - RECORD_GRACE):
        return
    heads = {c: s for c, (s, _m) in latest.data.get("heads", {}).items()}
    cut = sorted(c for c, st in states.items() if heads.get(c) == st.expected - 1)
    raise ChainTruncated(f"checkpoint #{latest.seq}'s sealed record, written right after "
                         "it, is gone: the chain was cut back to the head it signed",
                         chain_id=cut[0] if cut else "",
                         seq=heads[cut[0]] + 1 if cut else None)
