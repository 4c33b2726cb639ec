"""The record pass of ``verify_store`` (ASVS 7.3.3): where each chain stands, the hot loop
over sealed rows, and the join of parts scanned by separate workers.

Every row's MAC is recomputed and its place checked (``seq`` and the ``prev`` link). A
column an insider filled with a value of a type authgate never writes (text or a BLOB in
``seq``, a NULL anywhere, an integer key id) is damage to that record (``altered``), never
a crash of the verifier (issue 16).
"""
from __future__ import annotations

import hmac
import json
import re
from collections.abc import Callable, Iterable
from typing import Any

from authgate.audit.chain import FIELDS, GENESIS, SEP, SEP_BYTE, SEPARATORS
from authgate.audit.checkpoints import VerifiedCheckpoints
from authgate.audit.errors import (
    ChainHeadCut,
    RecordAltered,
    RecordForged,
    RecordsMissing,
    RecordsReordered,
    RecordUnsealed,
    UnknownKeyId,
)
from authgate.storage.audit_rows import SealedRow

_SAME = hmac.compare_digest
#: what writers make: a chain id is 128 random bits in hex, a key id 64 bits of a MAC
_CHAIN_ID = re.compile(r"[0-9a-f]{32}")
_KEY_ID = re.compile(r"[0-9a-f]{16}")
_EVENT = FIELDS.index("event")
#: the records read beyond their MAC: the store hands their sealed text over as text
#: (``AuditStore.stream_sealed``'s ``text_event``), every other version 2 text as bytes
CHECKPOINT_EVENT = "audit.checkpoint"
_CHECKPOINT = CHECKPOINT_EVENT.encode()
#: a sealed ``audit.checkpoint`` record: (record id, seq, checkpoint seq, key id, signature)
CheckpointRef = tuple[int, int, int, str, str]


class State:
    """Where one chain stands during the pass."""

    __slots__ = ("chain_id", "expected", "prev", "count", "first", "first_id", "first_prev",
                 "last", "lead", "gap", "refs")

    def __init__(self, chain_id: str, seq: int, prev: str | None) -> None:
        self.chain_id, self.expected, self.prev = chain_id, seq + 1, prev
        self.count, self.first, self.first_id, self.first_prev = 0, 0, 0, ""
        self.last = b""  # the sealed bytes of the chain's last record so far
        self.lead = b""  # and of its first record scanned
        #: a record ahead of its place: (id, seq, at the head?); the chain's next record
        #: tells a deletion (it comes later still) from a reordering (it fills the gap)
        self.gap: tuple[int, int, bool, int] | None = None
        self.refs: list[CheckpointRef] = []  # the chain's sealed checkpoint records


States = dict[str, State]
MacOf = Callable[[bytes], str]


def scan(rows: Iterable[SealedRow], macs: dict[str, MacOf], cps: VerifiedCheckpoints,
         registered: set[str], *, mid: bool, states: States) -> States:
    """Check every row ``(id, seq, mac, chain_id, key_id, prev, sealed)`` in id order,
    continuing ``states`` (``mid``: chains first met here may begin before these rows).
    A value of a type no writer stores, wherever it trips the checks, is damage to its
    record."""
    where: list[int | None] = [None]
    try:
        _scan_rows(rows, macs, cps, registered, mid, states, where)
    except (TypeError, ValueError, AttributeError, OverflowError) as exc:
        raise RecordAltered("a column holds a value of a type authgate never writes",
                            record_id=where[0]) from exc
    return states


def _scan_rows(rows: Iterable[SealedRow], macs: dict[str, MacOf], cps: VerifiedCheckpoints,
               registered: set[str], mid: bool, states: States,
               where: list[int | None]) -> None:
    """The hot loop of a million-record check: the database rendered the sealed bytes
    (``AuditStore.stream_sealed``), the MAC comes from a pre-keyed HMAC. Only a text that
    did not come as bytes may be an ``audit.checkpoint`` record (``CHECKPOINT_EVENT``)."""
    anchors, heads = cps.anchors, cps.heads
    for rid, seq, mac, chain_id, key_id, prev, sealed in rows:
        where[0] = rid
        st = states.get(chain_id)
        if st is None:
            st = states[chain_id] = _begin(rid, chain_id, seq, prev, anchors, mid)
        mac_of = macs.get(key_id)
        if mac_of is None:
            raise _unknown_key(rid, chain_id, seq, key_id, st, chain_id in registered)
        text = type(sealed) is not bytes  # version 1, a checkpoint's version 2, or NULL
        if type(sealed) is not bytes:
            sealed = _text_bytes(sealed, rid, seq, st, registered)
        try:
            same = _SAME(mac_of(sealed), mac)
        except TypeError:  # not ASCII text, or no text: no MAC authgate wrote
            same = False
        if not same:
            raise _bad_mac(rid, chain_id, seq, st, chain_id in registered)
        if seq != st.expected or st.gap is not None:
            _out_of_place(rid, seq, st, mid)
        elif st.prev is not None and prev != st.prev:
            raise RecordsReordered("record does not link to its predecessor",
                                   record_id=rid, chain_id=chain_id, seq=seq)
        signed = heads.get(chain_id)
        if signed is not None and signed.get(seq, mac) != mac:
            raise RecordAltered("differs from the record a checkpoint signed",
                                record_id=rid, chain_id=chain_id, seq=seq)
        if text and _CHECKPOINT in sealed:
            _note_checkpoint(st, rid, seq, sealed)
        if not st.count:
            st.lead = sealed
        st.prev, st.expected, st.last = mac, seq + 1, sealed
        st.count += 1


def _unknown_key(rid: int, chain_id: str, seq: int, key_id: object, st: State,
                 registered: bool) -> RecordAltered | RecordForged | UnknownKeyId:
    """A key id no configured key knows: a record in a chain no writer registered (forged,
    as with a bad MAC), a rotated-out key missing from the configuration (the chain's first
    record, in a key id's form), or an edit (a chain keeps one key from first to last)."""
    where: dict[str, Any] = {"record_id": rid, "chain_id": chain_id, "seq": seq}
    if not registered and type(chain_id) is str and _CHAIN_ID.fullmatch(chain_id):
        return RecordForged("record of a chain no writer registered", **where)
    if type(key_id) is str and _KEY_ID.fullmatch(key_id) and st.count == 0:
        return UnknownKeyId(f"key id {key_id!r} is not configured", **where)
    return RecordAltered("key id edited: no writer sealed this record with it", **where)


def _text_bytes(text: str | bytes | None, rid: int, seq: int, st: State,
                registered: set[str]) -> bytes:
    """A sealed text handed over as text as the bytes its MAC covers: version 2 JSON (a
    record of ``CHECKPOINT_EVENT``), or version 1 after its separator count. Only JSON
    starts with ``[`` (version 1 starts with its ``v``; no writer made a version 1 text that
    does), and JSON has no raw separator: the text of any other row fails its MAC."""
    if text is None:  # a NULL in a sealed column (the schema forbids it)
        raise RecordAltered("a sealed field is NULL", record_id=rid, seq=seq)
    data = text if isinstance(text, bytes) else text.encode()
    if data.startswith(b"["):
        return data
    if data.count(SEP_BYTE) != SEPARATORS:  # a field holding the separator
        raise _bad_mac(rid, st.chain_id, seq, st, st.chain_id in registered)
    return data


def _begin(rid: int, chain_id: str, seq: int, prev: str,
           anchors: dict[str, tuple[int, str]], mid: bool) -> State:
    if type(chain_id) is not str:  # NULL or a BLOB: the schema allows neither
        raise RecordAltered("chain id is not text", record_id=rid)
    if chain_id == "":
        raise RecordUnsealed("record is in no chain", record_id=rid, seq=seq)
    anchor_seq, anchor_mac = anchors.get(chain_id, (0, GENESIS))
    if mid and type(seq) is int and seq - 1 > anchor_seq:
        st = State(chain_id, seq - 1, None)  # the span starts mid-chain: link checked later
    else:
        st = State(chain_id, anchor_seq, anchor_mac)
    st.first, st.first_id, st.first_prev = seq, rid, prev
    return st


def _bad_mac(rid: int, chain_id: str, seq: int, st: State,
             registered: bool) -> RecordAltered | RecordForged:
    """A MAC that fails: a record no writer made (a chain no writer registered, or a
    second record at a position already taken), or an edited one."""
    where: dict[str, Any] = {"record_id": rid, "chain_id": chain_id, "seq": seq}
    if not registered and _CHAIN_ID.fullmatch(chain_id):
        return RecordForged("record of a chain no writer registered", **where)
    if registered and type(seq) is int and st.expected - st.count <= seq < st.expected:
        return RecordForged("second record at a position already taken", **where)
    return RecordAltered("content does not match its MAC", **where)


def _out_of_place(rid: int, seq: int, st: State, ranged: bool) -> None:
    if st.gap is not None:
        raise_gap(st, filled=seq < st.gap[1])
    if seq < st.expected:  # an int: the record's MAC passed
        raise RecordForged("copy of a record already in the chain", record_id=rid,
                           chain_id=st.chain_id, seq=seq)
    st.gap = (rid, seq, st.count == 0 and not ranged, st.expected)


def raise_gap(st: State, *, filled: bool) -> None:
    rid, seq, head, expected = st.gap  # type: ignore[misc]
    where: dict[str, Any] = {"record_id": rid, "chain_id": st.chain_id, "seq": seq}
    if filled:
        raise RecordsReordered("record stored ahead of records written before it", **where)
    if head:
        raise ChainHeadCut("chain does not start at its first record or a signed cut",
                           **where)
    raise RecordsMissing(f"records {expected} to {seq - 1} of the chain are missing",
                         **where)


def _note_checkpoint(st: State, rid: int, seq: int, sealed: bytes) -> None:
    """Keep the reference an authentic ``audit.checkpoint`` record makes to its checkpoint
    (its detail names the checkpoint's seq, key id and signature)."""
    if sealed.startswith(b"["):
        fields = json.loads(sealed)
    else:
        fields = sealed.decode().split(SEP)
    if len(fields) <= _EVENT or fields[_EVENT] != "audit.checkpoint":
        return
    detail = json.loads(fields[-1])
    st.refs.append((rid, seq, int(detail["checkpoint"]), str(detail["key_id"]),
                    str(detail["signature"])))


def join(merged: States, part: States, cps: VerifiedCheckpoints) -> States:
    """Chain a later part onto ``merged``: each chain's first record in the part must
    follow its last before (a chain first met in the part must begin at its start)."""
    for chain_id, st in part.items():
        before = merged.get(chain_id)
        if before is None:
            anchor_seq, anchor_mac = cps.anchors.get(chain_id, (0, GENESIS))
            before = State(chain_id, anchor_seq, anchor_mac)
            before.first = st.first
        _seam(before, st)
        if before.count:
            st.first, st.lead = before.first, before.lead
        st.count += before.count
        st.refs[:0] = before.refs
        merged[chain_id] = st
    return merged


def _seam(before: State, st: State) -> None:
    where: dict[str, Any] = {"record_id": st.first_id, "chain_id": st.chain_id,
                             "seq": st.first}
    if before.gap is not None:
        raise_gap(before, filled=st.first < before.gap[1])
    if st.first < before.expected:
        raise RecordForged("copy of a record already in the chain", **where)
    if st.first > before.expected and before.count == 0:
        # a chain first met past its start: as in a serial scan, the gap stays open so that
        # a later part that holds the missing records makes it "reordered" (issue 16:
        # the verdict does not depend on --jobs); a later gap in this part decides now
        head = (st.first_id, st.first, True, before.expected)
        if st.gap is not None:
            before.gap = head
            raise_gap(before, filled=st.gap[1] < st.first)
        st.gap = head
        return
    if st.first > before.expected:
        before.gap = (st.first_id, st.first, before.count == 0, before.expected)
        raise_gap(before, filled=False)
    if before.prev is not None and st.first_prev != before.prev:
        raise RecordsReordered("record does not link to its predecessor", **where)


def event_of(sealed: bytes) -> str:
    """The ``event`` field of sealed bytes of either version (``chain.FIELDS`` order)."""
    if sealed.startswith(b"["):
        fields = json.loads(sealed)
        return str(fields[_EVENT]) if len(fields) > _EVENT else ""
    parts = sealed.decode().split(SEP, _EVENT + 1)
    return parts[_EVENT] if len(parts) > _EVENT else ""
