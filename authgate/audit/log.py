"""``AuditLog``: stamps events with the clock, seals them into a chain, stores them before
the response is sent, then copies them to the SIEM sinks.

A failed write raises ``StorageError``; the web layer then denies (ASVS 7.1.3, 4.1.5).
Every record is chained (``writer.ChainWriter``); with a ``Signer``, signed checkpoints
are written every ``checkpoint_every`` records of a chain or ``checkpoint_interval``
(ASVS 7.3.3); a checkpoint failure is logged and retried later, never fails the decision.
The interval is also a timer: an idle gateway signs its last records at most
``checkpoint_interval`` after they were written. Each checkpoint goes to the witness too
(``witness_writer``), off the request thread.
"""
from __future__ import annotations

import json
import logging
import os
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from time import perf_counter
from typing import Any

from authgate.audit.chain import Keyring
from authgate.audit.checkpoints import Checkpoint, Signer, make_checkpoint
from authgate.audit.metrics import append_failed, observe_append
from authgate.audit.sinks import NoSinks, SinkFanout, SinkHealth
from authgate.audit.witness_writer import WitnessWriter
from authgate.audit.writer import ChainWriter, HeldLane
from authgate.core.clock import Clock
from authgate.core.errors import AuthgateError
from authgate.core.values import AuditEvent, Outcome
from authgate.storage.audit_rows import AuditRow, CheckpointRow
from authgate.storage.interfaces import AuditStore
from authgate.storage.step_interfaces import SealedRecord
from authgate.storage.timeconv import to_micros

_log = logging.getLogger("authgate.audit")
#: the name of the thread that writes an interval checkpoint when no record follows
CHECKPOINT_TIMER = "audit-checkpoint-timer"


class AuditLog:
    def __init__(self, store: AuditStore, clock: Clock, *, keyring: Keyring,
                 signer: Signer | None = None, sinks: SinkFanout | None = None,
                 checkpoint_every: int = 1000,
                 checkpoint_interval: timedelta = timedelta(minutes=5), lanes: int = 1,
                 witness: WitnessWriter | None = None) -> None:
        self._store = store
        self._clock = clock
        self.sinks = sinks or NoSinks()
        #: signs checkpoints and export manifests; None: no checkpoints (tests only)
        self.signer = signer
        self.keyring = keyring
        self._writer = ChainWriter(store, keyring, lanes=lanes)
        self._every = max(1, checkpoint_every)
        self._interval = checkpoint_interval
        self._last_checkpoint: datetime | None = None
        self._checkpointing = threading.Lock()
        #: appends every signed checkpoint outside the database (``audit.witness``)
        self.witness = witness
        self._timer: threading.Timer | None = None
        self._timer_pid = 0

    @property
    def store(self) -> AuditStore:
        return self._store

    def sink_health(self) -> list[SinkHealth]:
        """Each SIEM sink and the messages it dropped (the admin health page)."""
        return self.sinks.health()

    def record(self, event: AuditEvent) -> int:
        now, started = self._clock.now(), perf_counter()
        try:
            row = self._writer.append(event, to_micros(now))
        except Exception:
            append_failed()  # docs/metrics.md: the trail cannot record its own outage
            raise
        self._published(event, row, now, started)
        return row.id

    @contextmanager
    def within(self) -> Iterator[AuditSlot]:
        """One record sealed into its chain but stored by the caller, inside the caller's
        own transaction (a login step's writes commit together, issue 20 item 1). The lane
        is held from here to the end of the block: take this *before* the transaction
        begins, and record nothing else until it ends. After the block, the stored record
        goes to the sinks and counts towards a checkpoint, as ``record``'s do."""
        now, started = self._clock.now(), perf_counter()
        with self._writer.hold() as held:
            slot = AuditSlot(held, to_micros(now))
            try:
                yield slot
            except Exception:
                if held.pending is not None:
                    append_failed()
                raise
        if slot.event is not None and slot.row is not None:
            self._published(slot.event, slot.row, now, started)

    def _published(self, event: AuditEvent, row: AuditRow, now: datetime,
                   started: float) -> None:
        """A stored record: metrics, the SIEM copy, and a checkpoint when one is due."""
        observe_append(event, started)  # docs/metrics.md
        self.sinks.emit(row)
        if self._checkpoint_due(now):
            self._checkpoint_quietly()
        elif event.event != "audit.checkpoint" and self.signer is not None:
            self._arm_timer(now)
        if event.outcome is Outcome.ERROR:
            _log.warning("audit %s %s reason=%s", event.event, event.outcome.value,
                         event.reason)

    def _checkpoint_due(self, now: datetime) -> bool:
        if self.signer is None:
            return False
        if self._last_checkpoint is None:
            self._last_checkpoint = now
        return (self._writer.due(self._every)
                or now - self._last_checkpoint >= self._interval)

    def _arm_timer(self, now: datetime) -> None:
        """A checkpoint at most ``checkpoint_interval`` after this record, even if no
        record follows (the residual window is bounded in time, not only in records)."""
        timer = self._timer
        if timer is not None and self._timer_pid == os.getpid() and timer.is_alive():
            return
        since = now - (self._last_checkpoint or now)
        delay = max((self._interval - since).total_seconds(), 0.0)
        self._timer = threading.Timer(delay, self._on_timer)
        self._timer.name = CHECKPOINT_TIMER
        self._timer.daemon = True
        self._timer_pid = os.getpid()
        self._timer.start()

    def _on_timer(self) -> None:
        if not self._writer.due(1):
            return  # a checkpoint since has signed every record
        try:
            self._checkpoint_quietly()
        except Exception:  # noqa: BLE001 - a timer thread has no caller to tell
            _log.exception("audit interval checkpoint failed")

    def _checkpoint_quietly(self) -> None:
        if not self._checkpointing.acquire(blocking=False):
            return  # another thread is at it; the record is stored either way
        try:
            self.checkpoint(kind="interval")
        except AuthgateError as exc:
            _log.warning("audit checkpoint failed: %s", exc.reason)
        finally:
            self._checkpointing.release()

    def checkpoint(self, *, kind: str = "manual",
                   anchors: dict[str, tuple[int, str]] | None = None,
                   cut: datetime | None = None) -> Checkpoint:
        """Sign the head of every chain that grew, store it, and record it in the chain
        (so the SIEM copy holds it too). Retries when another writer took the number."""
        store, signer, writer = self._store, self.signer, self._writer
        if signer is None:
            raise AuthgateError("checkpoints need a signer")
        now = self._clock.now()
        self._last_checkpoint = now
        writer.checkpointed()
        for _attempt in range(20):
            last = store.last_checkpoint()
            prev_max = int(_payload(last).get("max_id", 0)) if last else 0
            max_id, heads = store.heads_since(prev_max)
            heads.update(writer.heads())
            cp = make_checkpoint(
                signer=signer, seq=(last.seq + 1) if last else 1,
                previous_signature=last.signature if last else "", ts=to_micros(now),
                kind=kind,
                max_id=max_id, heads=heads, anchors=anchors,
                cut=to_micros(cut) if cut else None)
            if store.insert_checkpoint(seq=cp.seq, ts=cp.ts, kind=cp.kind, key_id=cp.key_id,
                                       payload=cp.payload, signature=cp.signature):
                if self.witness is not None:
                    self.witness.append(cp)
                self.record(AuditEvent(
                    event="audit.checkpoint", outcome=Outcome.INFO, reason=f"checkpoint_{kind}",
                    detail=(("checkpoint", str(cp.seq)), ("key_id", cp.key_id),
                            ("chains", str(len(heads))), ("signature", cp.signature))))
                return cp
        raise AuthgateError("could not write a checkpoint: too much contention")

    def close(self) -> None:
        """Close every chain with a record (a chain without one ended abruptly), then stop
        the sinks. Called at process exit."""
        closing = AuditEvent(event="audit.chain.close", outcome=Outcome.INFO,
                             reason="process_exit")
        try:
            for row in self._writer.append_each(closing, to_micros(self._clock.now())):
                self.sinks.emit(row)
        except AuthgateError as exc:
            _log.warning("audit chains not closed: %s", exc.reason)
        if self._timer is not None and self._timer_pid == os.getpid():
            self._timer.cancel()
        if self.witness is not None:
            self.witness.close()
        self._writer.close()
        self.sinks.wait_idle(2.0)
        self.sinks.close()


class AuditSlot:
    """The one record ``AuditLog.within`` lets its caller store: ``seal`` it inside the
    transaction (again if the transaction is retried), ``stored`` once it has committed."""

    def __init__(self, held: HeldLane, ts: int) -> None:
        self._held = held
        self._ts = ts
        self.event: AuditEvent | None = None
        self.row: AuditRow | None = None

    def seal(self, event: AuditEvent) -> SealedRecord:
        self.event = event
        return self._held.seal(event, self._ts)

    def stored(self, new_id: int) -> None:
        self.row = self._held.stored(new_id)


def _payload(row: CheckpointRow) -> dict[str, Any]:
    return json.loads(row.payload)  # type: ignore[no-any-return]


def close_at_exit(log: AuditLog) -> None:
    """Register ``log.close`` for interpreter exit without keeping ``log`` alive."""
    import atexit

    ref = weakref.ref(log)

    def _close() -> None:
        target = ref()
        if target is not None:
            try:
                target.close()
            except Exception:  # noqa: BLE001 - exit must not fail on a closed database
                _log.warning("audit log close at exit failed", exc_info=True)

    atexit.register(_close)
