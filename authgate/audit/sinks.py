"""SIEM streaming: every committed record is copied to the configured sinks.

A sink never slows a login and never loses the stored record: ``emit`` only puts the row on
a bounded in-memory queue (``put_nowait``); a daemon thread per sink formats and sends, retries
with exponential backoff, and when a sink stays down its queue fills and new messages are
dropped and counted (``authgate_audit_sink_dropped_total``, ``SinkFanout.dropped``). The
database remains the record of truth; the copy is what makes deletion on the host visible.
Threads start lazily and are re-created in a forked child (gunicorn preload).
"""
from __future__ import annotations

import logging
import os
import queue
import socket
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple, Protocol

from prometheus_client import Counter

from authgate.audit.render import json_line
from authgate.audit.syslog import SyslogFormat, octet_frame
from authgate.config.audit import SinkSettings

_log = logging.getLogger("authgate.audit.sinks")
DROPPED = Counter("authgate_audit_sink_dropped_total",
                  "Audit records not delivered to a SIEM sink (buffer full)", ["sink"])
_BATCH = 200


class Sink(Protocol):
    name: str

    def send(self, rows: Sequence[Sequence[Any]]) -> None:
        """Deliver the rows or raise ``OSError``."""
        ...

    def close(self) -> None: ...


class SyslogSink:
    """RFC 5424 over UDP (RFC 5426, one datagram per record) or TCP (RFC 6587 framing)."""

    def __init__(self, settings: SinkSettings) -> None:
        self.name = f"syslog-{settings.transport}://{settings.host}:{settings.port}"
        self._settings = settings
        self._format = SyslogFormat(facility=settings.facility, app_name=settings.app_name,
                                    sd_id=settings.sd_id, hostname=socket.gethostname())
        self._sock: socket.socket | None = None

    def _connect(self) -> socket.socket:
        s = self._settings
        kind = socket.SOCK_STREAM if s.transport == "tcp" else socket.SOCK_DGRAM
        family, _, _, _, address = socket.getaddrinfo(s.host, s.port, type=kind)[0]
        sock = socket.socket(family, kind)
        sock.settimeout(s.timeout)
        try:
            sock.connect(address)
        except OSError:
            sock.close()
            raise
        return sock

    def send(self, rows: Sequence[Sequence[Any]]) -> None:
        sock = self._sock = self._sock or self._connect()
        try:
            if self._settings.transport == "tcp":
                sock.sendall(b"".join(octet_frame(self._format.message(r)) for r in rows))
            else:
                for row in rows:
                    sock.send(self._format.message(row).encode())
        except OSError:
            self.close()
            raise

    def close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()


class JsonlSink:
    """Appends one JSON object per line (``logrotate``: use ``copytruncate``)."""

    def __init__(self, path: str) -> None:
        self.name = f"jsonl:{path}"
        self._path = Path(path)

    def send(self, rows: Sequence[Sequence[Any]]) -> None:
        # created 0600: the copy holds the same records as the audit table
        fd = os.open(self._path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with open(fd, "a", encoding="utf-8") as out:
            out.write("".join(json_line(r) + "\n" for r in rows))

    def close(self) -> None:
        return None


class StdoutSink:
    name = "stdout"

    def send(self, rows: Sequence[Sequence[Any]]) -> None:
        sys.stdout.write("".join(json_line(r) + "\n" for r in rows))
        sys.stdout.flush()

    def close(self) -> None:
        return None


def build_sink(settings: SinkSettings) -> Sink:
    if settings.type == "syslog":
        return SyslogSink(settings)
    if settings.type == "jsonl":
        return JsonlSink(settings.path)
    return StdoutSink()


class SinkWorker:
    """A bounded queue and the daemon thread that drains it into one sink."""

    def __init__(self, sink: Sink, *, capacity: int, max_backoff: float = 5.0) -> None:
        self.sink = sink
        self.dropped = 0
        self.failures = 0
        self._queue: queue.Queue[Sequence[Any]] = queue.Queue(maxsize=max(1, capacity))
        self._stop = threading.Event()
        self._max_backoff = max_backoff
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()

    def offer(self, row: Sequence[Any]) -> None:
        if self._thread is None:
            self._start()
        try:
            self._queue.put_nowait(row)
        except queue.Full:
            self.dropped += 1
            DROPPED.labels(sink=self.sink.name).inc()

    def _start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"audit-sink {self.sink.name}",
                                        daemon=True)
        self._thread.start()

    def _run(self) -> None:
        delay = 0.05
        while not self._stop.is_set():
            try:
                batch = [self._queue.get(timeout=0.5)]
            except queue.Empty:
                continue
            while len(batch) < _BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            while not self._stop.is_set():
                try:
                    self.sink.send(batch)
                    delay = 0.05
                    break
                except Exception as exc:  # noqa: BLE001 - a sink failure must not kill the thread
                    self.failures += 1
                    _log.warning("audit sink %s failed (%s); retrying in %.2fs",
                                 self.sink.name, type(exc).__name__, delay)
                    self._stop.wait(delay)
                    delay = min(delay * 2, self._max_backoff)
            for _ in batch:
                self._queue.task_done()

    def idle(self) -> bool:
        return self._queue.unfinished_tasks == 0

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        if self._thread is not None and self._pid == os.getpid():
            self._thread.join(timeout)
        self.sink.close()


class SinkHealth(NamedTuple):
    """One sink as the admin health page shows it."""

    label: str
    dropped: int


class SinkFanout:
    """All sinks of one process. ``emit`` is O(sinks) and never blocks."""

    def __init__(self, settings: Sequence[SinkSettings], *, capacity: int = 10000) -> None:
        self._settings = tuple(settings)
        self._capacity = capacity
        self._pid = os.getpid()
        self.workers = [SinkWorker(build_sink(s), capacity=capacity) for s in self._settings]

    def emit(self, row: Sequence[Any]) -> None:
        if self._pid != os.getpid():  # forked: threads and sockets did not come along
            self._pid = os.getpid()
            self.workers = [SinkWorker(build_sink(s), capacity=self._capacity)
                            for s in self._settings]
        for worker in self.workers:
            worker.offer(row)

    @property
    def dropped(self) -> int:
        return sum(w.dropped for w in self.workers)

    def health(self) -> list[SinkHealth]:
        """Each sink's kind (``Syslog``, ``Jsonl``, ``Stdout``) and its dropped count."""
        return [SinkHealth(type(w.sink).__name__.replace("Sink", "") or "sink", w.dropped)
                for w in self.workers]

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """For tests and shutdown: wait until every queue is drained."""
        done = threading.Event()
        for _ in range(int(timeout / 0.01)):
            if all(w.idle() for w in self.workers):
                return True
            done.wait(0.01)
        return False

    def close(self) -> None:
        for worker in self.workers:
            worker.stop()


class NoSinks(SinkFanout):
    """No SIEM configured: a no-op instead of ``if enabled:`` branches (Warehouse)."""

    def __init__(self) -> None:
        super().__init__(())

    def emit(self, row: Sequence[Any]) -> None:
        return None
