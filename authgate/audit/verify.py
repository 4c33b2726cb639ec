"""``verify_store``: prove the stored trail is the one that was written (ASVS 7.3.3).

One pass over the primary key in keyset batches (constant memory, a few bytes of state per
chain): within a chain, id order is written order, since one lane writes it at a time. Every
record's MAC is recomputed. The first damage raises the exception for its kind, naming the
record: an edited or rewritten record (``altered``), a record no writer made (``forged``), a
gap (``missing``), records out of written order (``reordered``), a chain that does not start
at its beginning or a signed retention cut (``head_cut``), a chain shorter than a signed
checkpoint saw (``truncated``), a chain gone (``chain_deleted``), a record outside any chain
(``unsealed``), an unknown chain key (``unknown_key``), a bad or missing checkpoint
(``checkpoint_invalid``).
"""
from __future__ import annotations

import hmac
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from authgate.audit.chain import FIELDS, GENESIS, SEP, SEP_BYTE, SEPARATORS, Keyring
from authgate.audit.checkpoints import (
    Checkpoint,
    TrustedKeys,
    VerifiedCheckpoints,
    verify_checkpoints,
)
from authgate.audit.errors import (
    ChainDeleted,
    ChainHeadCut,
    ChainTruncated,
    RecordAltered,
    RecordForged,
    RecordsMissing,
    RecordsReordered,
    RecordUnsealed,
    UnknownKeyId,
)
from authgate.audit.parallel import collector_paused, id_spans, parallel_map
from authgate.storage.audit_rows import SealedRow
from authgate.storage.interfaces import AuditStore

_SAME = hmac.compare_digest


@dataclass(frozen=True)
class VerifiedChain:
    chain_id: str
    records: int
    first_seq: int
    last_seq: int
    closed: bool  # ends with ``audit.chain.close`` (else: a live writer, or a crash)
    after_checkpoint: int  # records after the newest signed head: chain-protected only


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


class _State:
    """Where one chain stands during the pass."""

    __slots__ = ("chain_id", "expected", "prev", "count", "first", "first_id", "first_prev",
                 "last", "gap")

    def __init__(self, chain_id: str, seq: int, prev: str | None) -> None:
        self.chain_id, self.expected, self.prev = chain_id, seq + 1, prev
        self.count, self.first, self.first_id, self.first_prev = 0, 0, 0, ""
        self.last = b""  # the sealed bytes of the chain's last record so far
        #: a record ahead of its place: (id, seq, at the head?); the chain's next record
        #: tells a deletion (it comes later still) from a reordering (it fills the gap)
        self.gap: tuple[int, int, bool] | None = None


def verify_store(store: AuditStore, *, keyring: Keyring, trusted: TrustedKeys,
                 since: datetime | None = None, until: datetime | None = None,
                 batch: int = 5000, jobs: int = 1) -> VerifiedTrail:
    """Verify the checkpoints, then every record (or those in ``[since, until)``).

    ``jobs > 1`` splits the id range over forked worker processes and joins the chains at
    the seams (each seam's first record must follow the previous part's last).
    """
    cps = verify_checkpoints(store.checkpoints(), trusted=trusted)
    registered = store.registered_chains()
    ranged = since is not None or until is not None
    job = _Job(store, keyring, cps, registered, batch)
    spans = id_spans(store, since=since, until=until, jobs=jobs)
    with collector_paused():
        parts = parallel_map(job, [(a, b, ranged or i > 0) for i, (a, b) in enumerate(spans)],
                             jobs=len(spans))
    states = _join(parts, cps, ranged)
    chains = [_finish(states.get(c), c, cps, registered, ranged)
              for c in sorted(set(states) | registered | set(cps.heads) | set(cps.anchors))]
    return VerifiedTrail(records=sum(c.records for c in chains), chains=tuple(chains),
                         checkpoints=cps.count, latest_checkpoint=cps.latest, ranged=ranged)


class _Job:
    """One span's scan; run in the parent or a forked worker (inherits store and keys)."""

    def __init__(self, store: AuditStore, keyring: Keyring, cps: VerifiedCheckpoints,
                 registered: set[str], batch: int) -> None:
        self.store, self.keyring, self.cps = store, keyring, cps
        self.registered, self.batch = registered, batch

    def __call__(self, span: tuple[int, int | None, bool]) -> dict[str, _State]:
        lo, hi, mid = span
        rows = self.store.stream_sealed(first_id=lo, last_id=hi, batch=self.batch)
        return _scan(rows, self.keyring, self.cps, self.registered, mid)


def _join(parts: list[dict[str, _State]], cps: VerifiedCheckpoints,
          ranged: bool) -> dict[str, _State]:
    """Chain the parts: each part's first record of a chain follows the previous last."""
    merged: dict[str, _State] = dict(parts[0]) if parts else {}
    for part in parts[1:]:
        for chain_id, st in part.items():
            before = merged.get(chain_id)
            if before is None:
                anchor_seq, anchor_mac = cps.anchors.get(chain_id, (0, GENESIS))
                before = _State(chain_id, anchor_seq, None if ranged else anchor_mac)
                before.first = st.first
            _seam(before, st, ranged and chain_id not in merged)
            st.first = before.first if before.count else st.first
            st.count += before.count
            merged[chain_id] = st
    return merged


def _seam(before: _State, st: _State, starts_range: bool) -> None:
    where: dict[str, Any] = {"record_id": st.first_id, "chain_id": st.chain_id,
                             "seq": st.first}
    if before.gap is not None:
        _raise_gap(before, filled=st.first < before.gap[1])
    if starts_range:
        return
    if st.first < before.expected:
        raise RecordForged("copy of a record already in the chain", **where)
    if st.first > before.expected:
        before.gap = (st.first_id, st.first, before.count == 0)
        _raise_gap(before, filled=False)
    if before.prev is not None and st.first_prev != before.prev:
        raise RecordsReordered("record does not link to its predecessor", **where)


def _scan(rows: Iterable[SealedRow], keyring: Keyring, cps: VerifiedCheckpoints,
          registered: set[str], mid: bool) -> dict[str, _State]:
    """Check every row ``(id, seq, mac, chain_id, key_id, prev, sealed)`` of a span (``mid``:
    chains may begin before the span). The hot loop of a million-record check: the database
    rendered the sealed bytes (``AuditStore.stream_sealed``), the MAC comes from a
    pre-keyed HMAC (``chain.PrekeyedMac``); a mac column edited into non-ASCII text is
    damage to report, not a crash."""
    macs = {kid: keyed.hexdigest for kid, keyed in keyring.keyed.items()}
    anchors, heads = cps.anchors, cps.heads
    states: dict[str, _State] = {}
    for rid, seq, mac, chain_id, key_id, prev, sealed in rows:
        st = states.get(chain_id)
        if st is None:
            st = states[chain_id] = _begin(rid, chain_id, seq, prev, anchors, mid)
        mac_of = macs.get(key_id)
        if mac_of is None:
            raise UnknownKeyId(f"key id {key_id!r} is not configured", record_id=rid,
                               chain_id=chain_id, seq=seq)
        if type(sealed) is not bytes:  # version 1 text (``chain``), or NULL
            sealed = _v1_bytes(sealed, rid, seq, st, registered)
        try:
            same = _SAME(mac_of(sealed), mac)
        except TypeError:  # not ASCII text, or no text: no MAC authgate wrote
            same = False
        if not same:
            _bad_mac(rid, chain_id, seq, st.expected, chain_id in registered)
        if seq != st.expected or st.gap is not None:
            _out_of_place(rid, seq, st, mid)
        elif st.prev is not None and prev != st.prev:
            raise RecordsReordered("record does not link to its predecessor",
                                   record_id=rid, chain_id=chain_id, seq=seq)
        signed = heads.get(chain_id)
        if signed is not None and signed.get(seq, mac) != mac:
            raise RecordAltered("differs from the record a checkpoint signed",
                                record_id=rid, chain_id=chain_id, seq=seq)
        st.prev, st.expected, st.last = mac, seq + 1, sealed
        st.count += 1
    return states


def _v1_bytes(text: str | bytes | None, rid: int, seq: int, st: _State,
              registered: set[str]) -> bytes:
    """A version 1 sealed text as the bytes its MAC covers, after its separator count."""
    if text is None:  # a NULL in a sealed column (the schema forbids it)
        raise RecordAltered("a sealed field is NULL", record_id=rid, seq=seq)
    data = text if isinstance(text, bytes) else text.encode()
    if data.count(SEP_BYTE) != SEPARATORS:  # a field holding the separator
        _bad_mac(rid, st.chain_id, seq, st.expected, st.chain_id in registered)
    return data


def _begin(rid: int, chain_id: str, seq: int, prev: str,
           anchors: dict[str, tuple[int, str]], mid: bool) -> _State:
    if chain_id is None:  # the schema forbids it
        raise RecordAltered("a sealed field is NULL", record_id=rid, seq=seq)
    if chain_id == "":
        raise RecordUnsealed("record is in no chain", record_id=rid, seq=seq)
    anchor_seq, anchor_mac = anchors.get(chain_id, (0, GENESIS))
    if mid and seq - 1 > anchor_seq:
        st = _State(chain_id, seq - 1, None)  # the span starts mid-chain: link checked later
    else:
        st = _State(chain_id, anchor_seq, anchor_mac)
    st.first, st.first_id, st.first_prev = seq, rid, prev
    return st


def _bad_mac(rid: int, chain_id: str, seq: int, expected: int, registered: bool) -> None:
    where: dict[str, Any] = {"record_id": rid, "chain_id": chain_id, "seq": seq}
    if not registered:
        raise RecordForged("record of a chain no writer registered", **where)
    if seq < expected:
        raise RecordForged("second record at a position already taken", **where)
    raise RecordAltered("content does not match its MAC", **where)


def _out_of_place(rid: int, seq: int, st: _State, ranged: bool) -> None:
    if st.gap is not None:
        _raise_gap(st, filled=seq < st.gap[1])
    if seq < st.expected:
        raise RecordForged("copy of a record already in the chain", record_id=rid,
                           chain_id=st.chain_id, seq=seq)
    st.gap = (rid, seq, st.count == 0 and not ranged)


def _raise_gap(st: _State, *, filled: bool) -> None:
    rid, seq, head = st.gap  # type: ignore[misc]
    where: dict[str, Any] = {"record_id": rid, "chain_id": st.chain_id, "seq": seq}
    if filled:
        raise RecordsReordered("record stored ahead of records written before it", **where)
    if head:
        raise ChainHeadCut("chain does not start at its first record or a signed cut",
                           **where)
    raise RecordsMissing("records before this one are missing", **where)


def _finish(st: _State | None, chain_id: str, cps: VerifiedCheckpoints,
            registered: set[str], ranged: bool) -> VerifiedChain:
    anchor = cps.anchors.get(chain_id)
    anchor_seq = anchor[0] if anchor else 0
    signed = [s for s in cps.heads.get(chain_id, {}) if s > anchor_seq]
    if st is not None and st.gap is not None:
        _raise_gap(st, filled=False)
    last = st.expected - 1 if st else anchor_seq
    count = st.count if st else 0
    if not ranged and signed and max(signed) > last:
        if count == 0 and anchor is None:
            raise ChainDeleted("a checkpoint saw this chain; no record is left",
                               chain_id=chain_id, seq=max(signed))
        raise ChainTruncated(f"chain ends at {last}; a checkpoint saw {max(signed)}",
                             chain_id=chain_id, seq=last + 1)
    if not ranged and count == 0 and chain_id in registered and anchor is None:
        raise ChainDeleted("registered chain has no records", chain_id=chain_id)
    newest = max(signed, default=anchor_seq)
    return VerifiedChain(chain_id, count, st.first if st else 0, last,
                         st is not None and _event_of(st.last) == "audit.chain.close",
                         max(0, last - newest) if count else 0)


_EVENT = FIELDS.index("event")


def _event_of(sealed: bytes) -> str:
    """The ``event`` field of sealed bytes of either version (``chain.FIELDS`` order)."""
    if sealed.startswith(b"["):
        fields = json.loads(sealed)
        return str(fields[_EVENT]) if len(fields) > _EVENT else ""
    parts = sealed.decode().split(SEP, _EVENT + 1)
    return parts[_EVENT] if len(parts) > _EVENT else ""
