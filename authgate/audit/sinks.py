"""SIEM streaming: every committed record is copied to the configured sinks, from the
database (``audit.delivery``: durable cursors, one deliverer per sink, issue 16 item 7).

A sink never slows a login: ``emit`` only wakes the sinks' deliverers; they read what was
committed after their cursor and send it, so a sink that is down for hours or a restart
loses nothing. The copy off the host is what makes a deletion on the host visible.
A sink's ``send`` returns only once the destination accepted the batch: TCP syslog waits
until the receiver's TCP stack acknowledged every byte, the JSON-lines file is fsync'ed.
Deliverers start lazily and are re-created in a forked child (gunicorn preload).
"""
from __future__ import annotations

import logging
import os
import select
import socket
import struct
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

from authgate.audit.delivery import Deliverer, Sink, SinkLag, sink_lag
from authgate.audit.render import json_line
from authgate.audit.syslog import SyslogFormat, octet_frame
from authgate.config.audit import DeliverySettings, SinkSettings
from authgate.core.clock import Clock
from authgate.core.errors import AuthgateError
from authgate.storage.interfaces import AuditStore, SinkCursorStore

_log = logging.getLogger("authgate.audit.sinks")
try:  # Linux: bytes written but not yet acknowledged by the peer (tcp(7) SIOCOUTQ)
    import fcntl
    import termios

    _OUTQ: int | None = termios.TIOCOUTQ
except (ImportError, AttributeError):  # pragma: no cover - elsewhere: sendall is the end
    _OUTQ = None


def tcp_peer_closed(sock: socket.socket) -> bool:
    """Whether the receiver closed (or reset) the connection. A syslog receiver never
    sends, so anything readable is its end of the stream. Writing into such a connection
    succeeds locally and is then lost: the 51-of-100 finding."""
    try:
        if not _readable(sock):
            return False
        return sock.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True


def _readable(sock: socket.socket) -> bool:
    """Without waiting (a peek on a socket with a timeout would wait that long). ``poll``,
    not ``select``: a busy worker's descriptors pass 1024, which ``select`` cannot watch."""
    poller = select.poll()
    poller.register(sock, select.POLLIN | select.POLLERR | select.POLLHUP)
    return bool(poller.poll(0))


def wait_acknowledged(sock: socket.socket, *, timeout: float) -> None:
    """Return once the peer's TCP acknowledged every byte sent; raise ``OSError`` when the
    connection failed or ``timeout`` passed (the batch is then sent again)."""
    deadline = time.monotonic() + timeout
    while True:
        error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if error:
            raise OSError(error, os.strerror(error))
        if _OUTQ is None or not _unacknowledged(sock):
            break
        if time.monotonic() > deadline:
            raise TimeoutError("the syslog receiver did not acknowledge the batch")
        time.sleep(0.001)
    # A reset purges the queue (acknowledged, then dropped unread): the peek raises. An
    # orderly close (end of stream) comes only after the receiver read everything.
    if _readable(sock):
        sock.recv(1, socket.MSG_PEEK)


def _unacknowledged(sock: socket.socket) -> int:
    raw = fcntl.ioctl(sock.fileno(), _OUTQ, struct.pack("i", 0))  # type: ignore[arg-type]
    return int(struct.unpack("i", raw)[0])


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
        """TCP: returns once the receiver's TCP stack acknowledged every byte. UDP (RFC
        5426) cannot know: a datagram that left is counted as delivered (best effort)."""
        if self._sock is not None and tcp_peer_closed(self._sock):
            self.close()  # the receiver restarted: never write into a dead connection
        sock = self._sock = self._sock or self._connect()
        try:
            if self._settings.transport == "tcp":
                sock.sendall(b"".join(octet_frame(self._format.message(r)) for r in rows))
                wait_acknowledged(sock, timeout=self._settings.timeout)
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
            out.flush()
            os.fsync(out.fileno())  # on disk before the cursor moves past these rows

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


class SinkHealth(NamedTuple):
    """One sink as the admin health page shows it."""

    label: str
    state: str


class SinkFanout:
    """All sinks of one process. ``emit`` is O(sinks), never blocks, reads nothing."""

    def __init__(self, settings: Sequence[SinkSettings], *, store: AuditStore,
                 cursors: SinkCursorStore, clock: Clock,
                 options: DeliverySettings | None = None, settle: float = 0.0) -> None:
        self._settings = tuple(settings)
        self._store, self._cursors, self._clock = store, cursors, clock
        self.options = options or DeliverySettings()
        self._settle = settle
        self._last = 0
        self._pid = os.getpid()
        self.deliverers = self._build()
        for deliverer in self.deliverers:  # records written from now on are this sink's
            try:
                cursors.ensure(deliverer.name, now=clock.now())
            except AuthgateError as exc:
                _log.warning("audit sink %s: no cursor yet (%s)", deliverer.name, exc.reason)

    def _build(self) -> list[Deliverer]:
        return [Deliverer(build_sink(s), store=self._store, cursors=self._cursors,
                          clock=self._clock, options=self.options, settle=self._settle)
                for s in self._settings]

    @property
    def names(self) -> list[str]:
        return [d.name for d in self.deliverers]

    def emit(self, row: Sequence[Any]) -> None:
        if self._pid != os.getpid():  # forked: threads and sockets did not come along
            self._pid = os.getpid()
            self.deliverers = self._build()
        self._last = max(self._last, int(row[0]))
        for deliverer in self.deliverers:
            deliverer.wake()

    def lags(self) -> list[SinkLag]:
        """Each sink's lag, from the database (and into the Prometheus gauges)."""
        if not self.deliverers:
            return []
        newest, now = self._store.max_id(), self._clock.now()
        return [sink_lag(name, store=self._store, cursors=self._cursors, now=now,
                         newest=newest) for name in self.names]

    def health(self) -> list[SinkHealth]:
        """Each sink and how far behind it is (the admin health page)."""
        return [SinkHealth(lag.sink, "ok" if not lag.behind else
                           f"{lag.behind} records behind, oldest {lag.seconds:.0f} s")
                for lag in self.lags()]

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """For tests and shutdown: wait until what this process wrote was delivered (or
        another process delivers for the sink)."""
        return all(d.wait_delivered(self._last, timeout) for d in self.deliverers)

    def close(self) -> None:
        for deliverer in self.deliverers:
            deliverer.stop()


class NoSinks(SinkFanout):
    """No SIEM configured: a no-op instead of ``if enabled:`` branches (Warehouse)."""

    def __init__(self) -> None:
        self.deliverers = []
        self.options = DeliverySettings()

    def emit(self, row: Sequence[Any]) -> None:
        return None

    def lags(self) -> list[SinkLag]:
        return []

    def wait_idle(self, timeout: float = 5.0) -> bool:
        return True
