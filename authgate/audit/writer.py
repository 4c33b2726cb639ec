"""One chain per writer lane: concurrent workers and instances never contend for a head.

Each process owns ``lanes`` chains (random 128-bit ids, registered with their first record);
a lane is a lock, a database connection and a chain head. Appending takes a free lane,
seals the record against that lane's head and commits; no cross-process lock, no shared
head row, so gunicorn workers and several hosts append at database speed. Order *within* a
chain is proven by ``seq`` and ``prev``; checkpoints tie all chains together
(docs/audit.md, "Why one chain per writer").
"""
from __future__ import annotations

import os
import queue
import secrets
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from authgate.audit.chain import FORMAT_VERSION, GENESIS, Keyring, seal_with
from authgate.core.values import AuditEvent
from authgate.storage.audit_rows import AuditRow, ChainHead, detail_json
from authgate.storage.interfaces import AuditAppender, AuditStore
from authgate.storage.step_interfaces import SealedRecord

#: lanes inherited across fork(): never touched again, and never garbage-collected (a
#: finaliser would close the parent's database socket)
_ORPHANED: list[Any] = []


@dataclass
class _Lane:
    chain_id: str
    appender: AuditAppender
    head: ChainHead = ChainHead(0, GENESIS)  # replaced as a whole: readers see a consistent pair
    registered: bool = False
    resync: bool = False
    since_checkpoint: int = 0


class ChainWriter:
    def __init__(self, store: AuditStore, keyring: Keyring, *, lanes: int = 1) -> None:
        self._store = store
        self._keyring = keyring
        self._max_lanes = max(1, lanes)
        self._label = f"{socket.gethostname()[:100]}:{os.getpid()}"
        self._reset()

    def _reset(self) -> None:
        self._pid = os.getpid()
        self._free: queue.SimpleQueue[_Lane] = queue.SimpleQueue()
        self._lanes: list[_Lane] = []
        self._grow = threading.Lock()

    def append(self, event: AuditEvent, ts: int) -> AuditRow:
        """Seal and store ``event`` at ``ts`` (µs); return the stored row."""
        lane = self._take()
        try:
            return self._append(lane, event, ts)
        finally:
            self._free.put(lane)

    def append_each(self, event: AuditEvent, ts: int) -> list[AuditRow]:
        """Append ``event`` once to every registered lane (chain close records)."""
        if os.getpid() != self._pid:
            return []
        rows = []
        for _ in range(len(self._lanes)):
            lane = self._free.get()
            try:
                if lane.registered:
                    rows.append(self._append(lane, event, ts))
            finally:
                self._free.put(lane)
        return rows

    def _append(self, lane: _Lane, event: AuditEvent, ts: int) -> AuditRow:
        if lane.resync:
            self._resync(lane)
        sealed = self._seal(lane, event, ts)
        try:
            new_id = lane.appender.insert(sealed.row, register=sealed.register)
        except BaseException:
            lane.resync = True  # the commit may have happened: re-read the head first
            raise
        return self._advance(lane, sealed, new_id)

    def _seal(self, lane: _Lane, event: AuditEvent, ts: int) -> SealedRecord:
        """``event`` sealed against the lane's head (the head is not moved yet)."""
        key_id = self._keyring.current_id
        seq, prev = lane.head[0] + 1, lane.head[1]
        values = (FORMAT_VERSION, lane.chain_id, seq, key_id, prev, ts, event.event,
                  event.outcome.value, event.reason, event.username, event.client_ip,
                  event.user_agent, event.host, event.path, event.method, event.rule_id,
                  event.policy_digest, event.request_id, detail_json(event.detail))
        mac = seal_with(self._keyring.keyed[key_id], values)
        register = None if lane.registered else (lane.chain_id, ts, self._label, key_id)
        return SealedRecord((*values, mac), register)

    @staticmethod
    def _advance(lane: _Lane, sealed: SealedRecord, new_id: int) -> AuditRow:
        """The record is committed: the lane's head moves to it."""
        lane.head, lane.registered = ChainHead(sealed.row[2], sealed.row[-1]), True
        lane.since_checkpoint += 1
        return AuditRow(new_id, *sealed.row)

    @contextmanager
    def hold(self) -> Iterator[HeldLane]:
        """A lane held for one record the caller stores inside its own transaction (a
        login step, ``storage.step_interfaces``). Taken *before* that transaction begins,
        as ``append`` takes it before its insert, so lanes and the database lock are always
        taken in the same order. A record sealed but not reported ``stored`` (rolled back,
        or a commit whose outcome is unknown) makes the lane re-read its head first."""
        lane = self._take()
        held = HeldLane(self, lane)
        try:
            if lane.resync:
                self._resync(lane)
            yield held
        finally:
            if held.pending is not None:
                lane.resync = True
            self._free.put(lane)

    def _resync(self, lane: _Lane) -> None:
        head = self._store.head_of(lane.chain_id)
        lane.head = head if head is not None else ChainHead(0, GENESIS)
        lane.registered = head is not None
        lane.resync = False

    def _take(self) -> _Lane:
        if os.getpid() != self._pid:  # forked: the parent's chains are not ours to extend
            _ORPHANED.append(self._lanes)
            self._reset()
        try:
            return self._free.get_nowait()
        except queue.Empty:
            pass
        with self._grow:
            if len(self._lanes) < self._max_lanes:
                lane = _Lane(chain_id=secrets.token_hex(16), appender=self._store.appender())
                self._lanes.append(lane)
                return lane
        return self._free.get()

    def heads(self) -> dict[str, ChainHead]:
        """This process's chain heads, from memory (authoritative for checkpoints)."""
        if os.getpid() != self._pid:
            return {}
        return {lane.chain_id: lane.head for lane in list(self._lanes) if lane.registered}

    def due(self, every: int) -> bool:
        return any(lane.since_checkpoint >= every for lane in list(self._lanes))

    def checkpointed(self) -> None:
        for lane in list(self._lanes):
            lane.since_checkpoint = 0

    def close(self) -> None:
        if os.getpid() != self._pid:
            return
        for lane in self._lanes:
            lane.appender.close()


class HeldLane:
    """One lane, held by ``ChainWriter.hold`` for a record sealed inside the caller's
    transaction: ``seal`` as often as the transaction is retried, ``stored`` once it has
    committed (only then does the chain's head move)."""

    def __init__(self, writer: ChainWriter, lane: _Lane) -> None:
        self._writer = writer
        self._lane = lane
        self.pending: SealedRecord | None = None

    def seal(self, event: AuditEvent, ts: int) -> SealedRecord:
        self.pending = self._writer._seal(self._lane, event, ts)  # noqa: SLF001 - its lane
        return self.pending

    def stored(self, new_id: int) -> AuditRow:
        if self.pending is None:
            raise RuntimeError("stored() without a sealed record")
        row = self._writer._advance(self._lane, self.pending, new_id)  # noqa: SLF001
        self.pending = None
        return row
