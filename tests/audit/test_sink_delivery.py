"""Issue 16 item 7: the SIEM stream loses no record. The database is the source of truth:
each sink keeps, durably, the id of the last record it delivered and resumes from there
after an outage or a restart, so the receiver gets every record once and in id order.

Real TCP syslog receivers (socketserver, RFC 6587 octet counting) that the tests stop and
restart on the same port; the records are written through the gateway itself (``/verify``
on the Flask test client) or the real writer; the frames are parsed as RFC 5424.
"""
from __future__ import annotations

import json
import re
import socket
import socketserver
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from authgate.audit.chain import Keyring
from authgate.audit.delivery import Deliverer
from authgate.audit.log import AuditLog
from authgate.composition.root import Services, build_services
from authgate.config import Settings
from authgate.config.audit import DeliverySettings
from authgate.core.clock import FixedClock
from authgate.storage.engine import migrate
from authgate.storage.sql_audit import SqlAuditStore
from authgate.storage.sql_sink_cursors import SqlSinkCursorStore
from tests.audit.conftest import event, sql, write
from tests.audit.test_sinks import RFC5424
from tests.conftest import make_settings, verify_headers
from tests.fixtures.net import free_port

_ID = re.compile(r'\bid="(\d+)"')


class SyslogReceiver:
    """A TCP syslog collector on a fixed port that can be stopped and started again, like a
    SIEM relay restarting. Keeps every RFC 5424 frame with the connection it came on."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.frames: list[tuple[int, str]] = []
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._server: socketserver.ThreadingTCPServer | None = None
        self._connections = 0

    def start(self) -> SyslogReceiver:
        receiver = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                receiver.serve(self.request)

        server = socketserver.ThreadingTCPServer(("127.0.0.1", self.port), Handler,
                                                 bind_and_activate=False)
        server.allow_reuse_address = True
        server.daemon_threads = True
        server.server_bind()
        server.server_activate()
        self._server = server
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def serve(self, conn: socket.socket) -> None:
        with self._lock:
            self._connections += 1
            number = self._connections
            self._open.add(conn)
        data = b""
        try:
            while chunk := conn.recv(65536):
                data += chunk
                while b" " in data:  # RFC 6587 §3.4.1: MSG-LEN SP SYSLOG-MSG
                    length, _, rest = data.partition(b" ")
                    if len(rest) < int(length):
                        break
                    with self._lock:
                        self.frames.append((number, rest[: int(length)].decode()))
                    data = rest[int(length):]
        except OSError:
            pass
        finally:
            with self._lock:
                self._open.discard(conn)

    def stop(self) -> None:
        """Close the listener and every connection, as a stopped daemon does."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        with self._lock:
            conns = list(self._open)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()

    def ids(self) -> list[int]:
        with self._lock:
            frames = list(self.frames)
        out = []
        for _conn, frame in frames:
            assert RFC5424.match(frame), f"not RFC 5424: {frame[:120]}"
            found = _ID.search(frame)
            assert found, frame[:120]
            out.append(int(found.group(1)))
        return out

    def senders(self) -> set[int]:
        with self._lock:
            return {conn for conn, _ in self.frames}


@pytest.fixture
def receiver() -> Iterator[SyslogReceiver]:
    r = SyslogReceiver(free_port()).start()
    yield r
    r.stop()


def _db_ids(settings: Settings) -> list[int]:
    from authgate.storage.engine import make_engine

    engine = make_engine(settings.storage.url)
    try:
        with engine.connect() as conn:
            return [int(r[0]) for r in conn.execute(text("SELECT id FROM audit_events "
                                                         "ORDER BY id"))]
    finally:
        engine.dispose()


def _sink_settings(tmp_path: Path, users_file: Path, sink: dict[str, object],
                   **delivery: object) -> Settings:
    audit: dict[str, object] = {"sinks": [sink]}
    audit["delivery"] = {"poll_interval": 0.05, **delivery}
    settings = make_settings(tmp_path, users_file, audit=audit)
    migrate(settings.storage.url)
    return settings


def _tcp(port: int) -> dict[str, object]:
    return {"type": "syslog", "transport": "tcp", "host": "127.0.0.1", "port": port,
            "timeout": 0.5}


def _verify(services: Services, count: int) -> None:
    from authgate.web import create_verify_app

    client = create_verify_app({"services": services, "TESTING": True}).test_client()
    for n in range(count):
        assert client.get("/verify", headers=verify_headers(f"/app/{n}")).status_code == 401


def _until(predicate: Callable[[], bool], timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def _every_record_once_in_order(receiver: SyslogReceiver, settings: Settings) -> None:
    assert _until(lambda: set(receiver.ids()) >= set(_db_ids(settings))), (
        f"{len(set(_db_ids(settings)) - set(receiver.ids()))} records never arrived")
    got, stored = receiver.ids(), _db_ids(settings)
    assert got == stored, "not every record once and in id order"


def test_tcp_sink_down_for_1000_records_and_a_restart_loses_nothing(
        tmp_path: Path, users_file: Path, receiver: SyslogReceiver) -> None:
    """The finding: with the receiver down, /verify went on (good) but only some records
    arrived when it came back, and what was queued in memory died with the process."""
    settings = _sink_settings(tmp_path, users_file, _tcp(receiver.port))
    first = build_services(settings)
    _verify(first, 10)
    assert _until(lambda: len(receiver.ids()) >= 10, 10)
    receiver.stop()
    started = time.monotonic()
    _verify(first, 500)
    first.audit.close()  # the gateway restarts: its threads and memory are gone
    first.engine.dispose()
    second = build_services(settings)
    _verify(second, 500)
    assert time.monotonic() - started < 60, "a dead sink slowed /verify down"
    receiver.start()
    try:
        _every_record_once_in_order(receiver, settings)
    finally:
        second.audit.close()
        second.engine.dispose()


def test_jsonl_sink_resumes_after_an_outage_and_a_restart(tmp_path: Path,
                                                          users_file: Path) -> None:
    """The JSON-lines copy: its directory is missing (an unmounted share) for a while."""
    share = tmp_path / "share"
    settings = _sink_settings(tmp_path, users_file,
                              {"type": "jsonl", "path": str(share / "audit.jsonl")})
    first = build_services(settings)
    _verify(first, 50)
    first.audit.close()
    first.engine.dispose()
    second = build_services(settings)
    _verify(second, 50)
    share.mkdir()
    try:
        def lines() -> list[int]:
            target = share / "audit.jsonl"
            text_ = target.read_text() if target.exists() else ""
            return [json.loads(line)["id"] for line in text_.splitlines()]

        assert _until(lambda: set(lines()) >= set(_db_ids(settings)))
        assert lines() == _db_ids(settings)
    finally:
        second.audit.close()
        second.engine.dispose()


def test_two_gateways_on_one_database_never_both_send(
        tmp_path: Path, users_file: Path, receiver: SyslogReceiver) -> None:
    """Two instances (or gunicorn workers) write to one database: one of them delivers
    (one connection carries every frame); when it stops, the other takes over."""
    settings = _sink_settings(tmp_path, users_file, _tcp(receiver.port))
    one, two = build_services(settings), build_services(settings)
    for _ in range(5):
        _verify(one, 20)
        _verify(two, 20)
    _every_record_once_in_order(receiver, settings)
    assert len(receiver.senders()) == 1, "two deliverers sent to the sink"
    holder, other = ((one, two) if one.audit.sinks.deliverers[0].holder else (two, one))
    assert other.audit.sinks.deliverers[0].holder is False
    holder.audit.close()  # releases the lease
    _verify(other, 50)
    try:
        _every_record_once_in_order(receiver, settings)
        assert len(receiver.senders()) == 2
    finally:
        other.audit.close()
        for svc in (one, two):
            svc.engine.dispose()


class ListSink:
    """A sink that keeps the ids it was sent (it can be switched off)."""

    def __init__(self) -> None:
        self.name = "list"
        self.ids: list[int] = []
        self.down = False

    def send(self, rows: Sequence[Sequence[Any]]) -> None:
        if self.down:
            raise ConnectionRefusedError("down")
        self.ids.extend(int(r[0]) for r in rows)

    def close(self) -> None:
        return None


def _deliverer(log: AuditLog, engine: Engine, clock: FixedClock, *, settle: float = 0.0,
               monotonic: Callable[[], float] = time.monotonic) -> Deliverer:
    return Deliverer(ListSink(), store=log.store, cursors=SqlSinkCursorStore(engine),
                     clock=clock, options=DeliverySettings(batch=7), settle=settle,
                     monotonic=monotonic)


def _drain(d: Deliverer) -> list[int]:
    while d.pump():
        pass
    assert isinstance(d.sink, ListSink)
    return d.sink.ids


def test_a_dead_holders_lease_runs_out_and_another_takes_over(
        engine: Engine, keyring: Keyring) -> None:
    clock = FixedClock()
    log = AuditLog(SqlAuditStore(engine), clock, keyring=keyring)
    first, second = _deliverer(log, engine, clock), _deliverer(log, engine, clock)
    SqlSinkCursorStore(engine).ensure(first.name, now=clock.now())
    ids = write(log, 20)
    assert _drain(first) == ids and first.holder is True
    more = write(log, 5)
    assert second.pump() == 0 and second.holder is False  # never both
    first.stop(release=False)  # killed: the lease stays taken until it runs out
    clock.advance(seconds=8)
    assert second.pump() == 0
    clock.advance(seconds=8)
    assert _drain(second) == more, "the new holder resumes after the cursor"
    assert second.holder is True
    assert first.pump() == 0 and first.holder is False  # back from a pause: not the holder


def test_the_cursor_moves_only_for_the_lease_holder(engine: Engine) -> None:
    cursors, now = SqlSinkCursorStore(engine), datetime(2026, 1, 5, tzinfo=UTC)
    SqlAuditStore(engine).append(event(1, time=now))
    start = cursors.ensure("s", now=now)
    assert (start.last_id, start.owner) == (1, "")  # a new sink starts after what exists
    later = now + timedelta(seconds=10)
    assert cursors.claim("s", owner="a", now=now, until=later)
    assert not cursors.claim("s", owner="b", now=now, until=later)
    assert not cursors.advance("s", owner="b", expected=1, last_id=9, last_ts=0, now=now,
                               until=later)
    assert not cursors.advance("s", owner="a", expected=0, last_id=9, last_ts=0, now=now,
                               until=later)  # a stale position never moves it
    assert cursors.advance("s", owner="a", expected=1, last_id=9, last_ts=5, now=now,
                           until=later)
    cursors.release("s", owner="a")
    assert cursors.claim("s", owner="b", now=now, until=later)
    assert cursors.read("s") is not None and cursors.read("s").last_id == 9  # type: ignore[union-attr]


def test_a_lower_id_that_commits_late_is_not_passed_over(postgres_engine: Engine,
                                                         keyring: Keyring) -> None:
    """PostgreSQL takes ids at insert and commits transactions in any order: a cursor
    "after id N" would skip an id below N committed a moment later (SQLite serialises
    writers: its ids commit in id order, so this runs on PostgreSQL only)."""
    engine = postgres_engine
    clock, ticks = FixedClock(), [0.0]
    log = AuditLog(SqlAuditStore(engine), clock, keyring=keyring)
    settled = _deliverer(log, engine, clock, settle=1.0, monotonic=lambda: ticks[0])
    naive = Deliverer(ListSink(), store=log.store, cursors=SqlSinkCursorStore(engine),
                      clock=clock, options=DeliverySettings(), settle=0.0)
    naive.name = naive.sink.name = "naive"
    for d in (settled, naive):
        SqlSinkCursorStore(engine).ensure(d.name, now=clock.now())
    early = write(log, 3)
    with engine.connect() as slow:  # a long transaction holds the next id
        slow.execute(text("INSERT INTO audit_events (ts, event, outcome, reason, username, "
                          "client_ip, user_agent, host, path, method, rule_id, policy_digest, "
                          "request_id, detail) VALUES (1, 'verify', 'allow', 'allowed', '', "
                          "'', '', '', '/', 'GET', '', '', '', '{}')"))
        late = write(log, 2)
        assert _drain(naive) == [*early, *late]  # the attack: the low id is passed over
        assert _drain(settled) == []  # no id has been visible for a second yet
        ticks[0] = 0.5
        assert _drain(settled) == []
        slow.commit()  # within the settle time
    ticks[0] = 1.0
    stored = [r[0] for r in sql(engine, "SELECT id FROM audit_events ORDER BY id")]
    assert len(stored) == 6 and stored != [*early, *late]
    assert _drain(settled) == stored, "every record, in id order, the late one included"


def test_an_outage_shows_in_readyz_metrics_the_cli_and_the_log(
        tmp_path: Path, users_file: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Nothing said the SIEM was missing records: no log line, /readyz ready, the drop
    counter never served. Now the lag is served, /readyz stays 200 (logins go on) but says
    "degraded", and the log says when the sink went down and what it caught up."""
    from click.testing import CliRunner

    from authgate.cli import Context
    from authgate.cli.audit import audit_group
    from authgate.web import create_verify_app

    caplog.set_level("INFO", logger="authgate.audit.sinks")
    receiver = SyslogReceiver(free_port())
    name = f"syslog-tcp://127.0.0.1:{receiver.port}"
    settings = _sink_settings(tmp_path, users_file, _tcp(receiver.port),
                              degraded_after="1s")
    svc = build_services(settings)
    client = create_verify_app({"services": svc, "TESTING": True}).test_client()
    _verify(svc, 30)

    def sink_state() -> dict[str, Any]:
        answer = client.get("/readyz")
        assert answer.status_code == 200
        return answer.get_json()["sinks"]["0:syslog-tcp"]  # type: ignore[no-any-return]

    assert _until(lambda: sink_state()["state"] == "degraded", 10)
    assert sink_state()["behind"] == 30 and client.get("/readyz").get_json()["degraded"]
    metrics = client.get("/metrics").get_data(as_text=True)
    assert f'authgate_audit_sink_lag_records{{sink="{name}"}} 30.0' in metrics
    assert f'authgate_audit_sink_lag_seconds{{sink="{name}"}}' in metrics
    context = Context(None)
    context._settings = settings  # noqa: SLF001 - the settings the test built
    shown = CliRunner().invoke(audit_group, ["sinks"], obj=context)
    assert shown.exit_code == 0 and f"{name}: delivered up to record 0" in shown.output
    assert "30 records behind" in shown.output
    assert any("is down" in r.getMessage() for r in caplog.records)
    receiver.start()
    try:
        _every_record_once_in_order(receiver, settings)
        assert _until(lambda: sink_state() == {"last_id": _db_ids(settings)[-1], "behind": 0,
                                               "lag_seconds": 0.0, "state": "ok"}, 10)
        assert any("is back" in r.getMessage() and "caught up 30 records" in r.getMessage()
                   for r in caplog.records)
    finally:
        svc.audit.close()
        svc.engine.dispose()
        receiver.stop()
