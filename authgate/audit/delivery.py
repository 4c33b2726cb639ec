"""Delivery from the database to one SIEM sink: every committed record, once, in id order.

The database is the record of truth (issue 16 item 7). Each sink has a durable cursor, the
id of the last record it accepted (``storage.tables_sinks``); a deliverer reads the records
after it in keyset batches, sends a batch, and moves the cursor only once the sink accepted
it. An outage or a restart therefore loses nothing: delivery resumes after the cursor.

- **One deliverer per sink** across workers and instances: a lease (owner, expiry) taken
  and renewed by conditional UPDATEs; the holder renews it with every batch, releases it on
  a clean exit, and another process takes over once a dead holder's lease ran out. A batch
  is only sent with at least half the lease left.
- **Once**: the cursor never re-sends a batch it recorded as accepted. A crash between the
  send and the cursor update repeats at most that one batch; records carry ``id``,
  ``chain`` and ``seq`` so the receiver can drop the repeat.
- **In order**: ids are taken at insert and, on PostgreSQL, transactions commit in any
  order, so "after id N" could pass over a lower id committed a moment later. There the
  deliverer only reads up to the highest id it saw ``settle`` seconds ago; SQLite writers
  are serialised, so its ids commit in order.
- The request path only calls ``wake`` (an ``Event.set``): no database read, no queue.
"""
from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, NamedTuple, Protocol

from prometheus_client import Gauge

from authgate.config.audit import DeliverySettings
from authgate.core.clock import Clock
from authgate.storage.audit_rows import ROW_COLUMNS, AuditFilter, RawAuditRow
from authgate.storage.interfaces import AuditStore, SinkCursorStore
from authgate.storage.sink_rows import SinkCursor

_log = logging.getLogger("authgate.audit.sinks")
_TS = ROW_COLUMNS.index("ts")
_ALL = AuditFilter()
LAG_RECORDS = Gauge("authgate_audit_sink_lag_records",
                    "Audit records stored but not yet delivered to the sink (ids behind)",
                    ["sink"], multiprocess_mode="mostrecent")
LAG_SECONDS = Gauge("authgate_audit_sink_lag_seconds",
                    "Age of the oldest audit record not yet delivered to the sink", ["sink"],
                    multiprocess_mode="mostrecent")


class Sink(Protocol):
    name: str

    def send(self, rows: Sequence[Sequence[Any]]) -> None:
        """Deliver the rows or raise ``OSError``; return only once the sink accepted them."""
        ...

    def close(self) -> None: ...


class SinkLag(NamedTuple):
    """How far a sink is behind the trail (``/readyz``, metrics, ``authgate audit sinks``)."""

    sink: str
    last_id: int
    behind: int  # ids stored after the cursor (a rolled-back insert's id counts too)
    seconds: float  # age of the oldest record not delivered; 0 when caught up
    updated_at: datetime | None
    owner: str
    lease_until: datetime | None


def sink_lag(name: str, *, store: AuditStore, cursors: SinkCursorStore, now: datetime,
             newest: int | None = None) -> SinkLag:
    """``name``'s lag, read from the database (every worker answers alike)."""
    cursor = cursors.read(name)
    last = cursor.last_id if cursor else 0
    newest = store.max_id() if newest is None else newest
    seconds = 0.0
    if newest > last:
        first = next(iter(store.row_batches(_ALL, after_id=last, batch=1)), [])
        if first:
            seconds = max(0.0, now.timestamp() - first[0][_TS] / 1_000_000)
    lag = SinkLag(name, last, max(0, newest - last), seconds,
                  cursor.updated_at if cursor else None, cursor.owner if cursor else "",
                  cursor.lease_until if cursor else None)
    LAG_RECORDS.labels(sink=name).set(lag.behind)
    LAG_SECONDS.labels(sink=name).set(lag.seconds)
    return lag


class Deliverer:
    """One sink's delivery in this process: a daemon thread that takes the sink's lease when
    it is free and then sends what the database holds after the cursor. ``pump`` is one pass
    (the tests drive it directly)."""

    def __init__(self, sink: Sink, *, store: AuditStore, cursors: SinkCursorStore,
                 clock: Clock, options: DeliverySettings, settle: float,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.sink, self.name = sink, sink.name
        self.owner = f"{socket.gethostname()[:100]}:{os.getpid()}:{secrets.token_hex(6)}"
        self._store, self._cursors, self._clock = store, cursors, clock
        self._options, self._settle, self._monotonic = options, settle, monotonic
        self._lease = options.lease
        #: the last id this process saw delivered; None before the first pass
        self.delivered: int | None = None
        #: True while this process holds the lease, False while another does
        self.holder: bool | None = None
        self.failures = 0
        self._down_since: float | None = None
        self._caught_up = 0
        self._seen: deque[tuple[float, int]] = deque()
        self._wake, self._stop = threading.Event(), threading.Event()
        self._thread: threading.Thread | None = None

    # -- one pass -----------------------------------------------------------------------
    def pump(self) -> int:
        """Send the next batch if this process holds (or can take) the lease; how many
        records were sent. Raises when the sink or the database failed."""
        cursor = self._leased(self._clock.now())
        if cursor is None:
            return 0
        self.delivered = max(self.delivered or 0, cursor.last_id)
        rows = self._pending(cursor.last_id)
        if not rows:
            self._back_up()
            return 0
        self.sink.send(rows)
        now = self._clock.now()
        last = rows[-1]
        if not self._cursors.advance(self.name, owner=self.owner, expected=cursor.last_id,
                                     last_id=last[0], last_ts=last[_TS], now=now,
                                     until=now + self._lease):
            self.holder = False
            _log.warning("audit sink %s: another deliverer took over; the %d records just "
                         "sent may arrive twice", self.name, len(rows))
            return 0
        self.delivered = last[0]
        self._caught_up += len(rows) if self._down_since is not None else 0
        return len(rows)

    def _leased(self, now: datetime) -> SinkCursor | None:
        """The cursor, with at least half the lease left for this process; None while
        another process holds the lease."""
        cursor = self._cursors.read(self.name) or self._cursors.ensure(self.name, now=now)
        if cursor.owner == self.owner and cursor.lease_until - now > self._lease / 2:
            self.holder = True
            return cursor
        if cursor.owner != self.owner and cursor.lease_until >= now:
            self.holder = False
            return None
        if not self._cursors.claim(self.name, owner=self.owner, now=now,
                                   until=now + self._lease):
            self.holder = False
            return None
        if not self.holder:
            _log.info("audit sink %s: delivering from this process after record %d",
                      self.name, cursor.last_id)
        self.holder = True
        return cursor

    def _pending(self, after: int) -> list[RawAuditRow]:
        ceiling = self._ceiling()
        if ceiling is not None and ceiling <= after:
            return []
        batches = self._store.row_batches(_ALL, after_id=after, batch=self._options.batch,
                                          last_id=ceiling)
        return next(iter(batches), [])

    def _ceiling(self) -> int | None:
        """The highest id seen at least ``settle`` seconds ago (None: no limit). Any lower
        id was taken before then; its transaction has had ``settle`` seconds to commit."""
        if self._settle <= 0:
            return None
        now = self._monotonic()
        self._seen.append((now, self._store.max_id()))
        ceiling = 0
        while self._seen and self._seen[0][0] <= now - self._settle:
            ceiling = max(ceiling, self._seen.popleft()[1])
        if ceiling:
            self._seen.appendleft((now - self._settle, ceiling))
        return ceiling

    # -- outage bookkeeping ---------------------------------------------------------------
    def _failed(self, exc: BaseException) -> None:
        self.failures += 1
        if self._down_since is None:
            self._down_since, self._caught_up = self._monotonic(), 0
            _log.warning("audit sink %s is down (%s: %s); records wait in the database and "
                         "are delivered when it is back", self.name, type(exc).__name__,
                         str(exc)[:200])

    def _back_up(self) -> None:
        if self._down_since is not None:
            _log.info("audit sink %s is back after %.1f s: caught up %d records",
                         self.name, self._monotonic() - self._down_since, self._caught_up)
            self._down_since = None

    # -- the thread -----------------------------------------------------------------------
    def wake(self) -> None:
        """Called after every record this process writes: O(1), never blocks."""
        if self._thread is None:
            self._start()
        self._wake.set()

    def _start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"audit-sink {self.name}",
                                        daemon=True)
        self._thread.start()

    def _run(self) -> None:
        delay = 0.05
        while not self._stop.is_set():
            self._wake.clear()
            try:
                sent = self.pump()
                delay = 0.05
            except Exception as exc:  # noqa: BLE001 - a sink failure must not kill the thread
                self._failed(exc)
                self._stop.wait(delay)  # not woken by new records: a dead sink waits
                delay = min(delay * 2, self._options.max_backoff)
                continue
            if not sent:
                self._wake.wait(self._options.poll_interval)

    def wait_delivered(self, target: int, timeout: float) -> bool:
        """Until ``target`` was delivered, or another process delivers for the sink."""
        deadline = self._monotonic() + timeout
        while self._monotonic() < deadline:
            if self.holder is False or (self.delivered or 0) >= target:
                return True
            self._stop.wait(0.01)
        return self.holder is False or (self.delivered or 0) >= target

    def stop(self, *, release: bool = True, timeout: float = 2.0) -> None:
        """Stop the thread and give the lease back, so another process need not wait for
        it to run out (``release=False`` is what a crash leaves)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        if release and self.holder:
            try:
                self._cursors.release(self.name, owner=self.owner)
            except Exception:  # noqa: BLE001 - the lease then runs out on its own
                _log.warning("audit sink %s: lease not released", self.name, exc_info=True)
        self.sink.close()

