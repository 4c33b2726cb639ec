"""SIEM sinks: real loopback syslog listeners (UDP and TCP) receive RFC 5424 messages; a
dead listener never blocks appends, and what it has not received is visible as lag."""
from __future__ import annotations

import json
import re
import socket
import threading
import time
from pathlib import Path

from prometheus_client import REGISTRY

from authgate.audit.chain import Keyring
from authgate.audit.checkpoints import TrustedKeys
from authgate.audit.log import AuditLog
from authgate.audit.sinks import SinkFanout
from authgate.config.audit import DeliverySettings, SinkSettings
from authgate.storage.engine import make_engine, migrate
from authgate.storage.sql_audit import SqlAuditStore
from authgate.storage.sql_sink_cursors import SqlSinkCursorStore
from tests.audit.conftest import TickingClock, check, event, write
from tests.fixtures.net import free_port

# RFC 5424 §6: <PRI>VERSION SP TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID SP MSGID SP SD [MSG]
RFC5424 = re.compile(
    r'^<(?P<pri>\d{1,3})>1 (?P<ts>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z) '
    r'(?P<host>[\x21-\x7e]{1,255}) (?P<app>[\x21-\x7e]{1,48}) (?P<pid>[\x21-\x7e]{1,128}) '
    r'(?P<msgid>[\x21-\x7e]{1,32}) \[(?P<sdid>[^ =\]"]{1,32})(?P<params>( [^ =\]"]{1,32}='
    r'"(?:[^"\\\]]|\\["\\\]])*")+)\] (?P<msg>.*)$', re.S)


def _log(tmp_path: Path, keyring: Keyring, sinks: list[SinkSettings]) -> AuditLog:
    url = f"sqlite:///{tmp_path / 'sink.db'}"
    migrate(url)
    engine = make_engine(url)
    store, clock = SqlAuditStore(engine), TickingClock()
    fanout = SinkFanout(sinks, store=store, cursors=SqlSinkCursorStore(engine), clock=clock,
                        options=DeliverySettings(poll_interval=0.05))
    return AuditLog(store, clock, keyring=keyring, sinks=fanout)


def test_udp_syslog_messages_parse(tmp_path: Path, keyring: Keyring) -> None:
    listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    listener.bind(("127.0.0.1", 0))
    listener.settimeout(5)
    log = _log(tmp_path, keyring, [SinkSettings(
        type="syslog", transport="udp", host="127.0.0.1", port=listener.getsockname()[1],
        facility="authpriv")])
    sinks = log.sinks
    log.record(event(1, username='eve"]\\ x', path="/a]b"))
    log.record(event(2, outcome=event(0).outcome.__class__("deny")))
    first = RFC5424.match(listener.recv(65535).decode())
    second = RFC5424.match(listener.recv(65535).decode())
    assert first and second, "not RFC 5424"
    assert first["pri"] == str(10 * 8 + 6) and second["pri"] == str(10 * 8 + 4)
    assert first["msgid"] == "verify" and first["sdid"] == "audit@32473"
    assert 'user="eve\\"\\]\\\\ x"' in first["params"] and 'path="/a\\]b"' in first["params"]
    listener.close()
    sinks.close()


def test_tcp_syslog_uses_octet_counting(tmp_path: Path, keyring: Keyring) -> None:
    server = socket.create_server(("127.0.0.1", 0))
    received: list[bytes] = []

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            while chunk := conn.recv(65536):
                received.append(chunk)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    log = _log(tmp_path, keyring, [SinkSettings(type="syslog", transport="tcp",
                                                host="127.0.0.1", port=server.getsockname()[1])])
    sinks = log.sinks
    write(log, 25)
    assert sinks.wait_idle(5)
    sinks.close()
    thread.join(5)
    data = b"".join(received)
    frames = []
    while data:  # RFC 6587 §3.4.1: MSG-LEN SP SYSLOG-MSG
        length, _, rest = data.partition(b" ")
        frames.append(rest[: int(length)].decode())
        data = rest[int(length):]
    assert len(frames) == 25 and all(RFC5424.match(f) for f in frames)
    server.close()


def test_dead_listener_never_blocks_and_its_lag_is_visible(tmp_path: Path,
                                                            keyring: Keyring) -> None:
    port = free_port()  # nothing listens here
    name = f"syslog-tcp://127.0.0.1:{port}"
    log = _log(tmp_path, keyring, [SinkSettings(type="syslog", transport="tcp",
                                                host="127.0.0.1", port=port, timeout=0.2)])
    started = time.monotonic()
    ids = write(log, 300)
    assert time.monotonic() - started < 5
    [lag] = log.sinks.lags()
    assert (lag.sink, lag.last_id, lag.behind) == (name, 0, 300) and lag.seconds > 0
    assert REGISTRY.get_sample_value("authgate_audit_sink_lag_records", {"sink": name}) == 300
    trusted = TrustedKeys.build(keyring=keyring, signer=None)
    assert check(log, keyring, trusted).records == len(ids)
    time.sleep(0.3)
    assert log.sinks.deliverers[0].failures >= 1
    log.sinks.close()


def test_jsonl_sink_copies_records(tmp_path: Path, keyring: Keyring) -> None:
    target = tmp_path / "siem.jsonl"
    log = _log(tmp_path, keyring, [SinkSettings(type="jsonl", path=str(target))])
    sinks = log.sinks
    ids = write(log, 5)
    assert sinks.wait_idle(5)
    lines = [json.loads(line) for line in target.read_text().splitlines()]
    assert [r["id"] for r in lines] == ids and lines[0]["mac"]
    sinks.close()


def test_jsonl_copy_is_created_0600_whatever_the_umask(tmp_path: Path) -> None:
    """Issue 14 item 5: the JSON-lines copy holds the audit records: owner-only."""
    import os

    from authgate.audit.sinks import JsonlSink
    from authgate.storage.audit_rows import INT_COLUMNS, ROW_COLUMNS

    row = tuple(0 if name in INT_COLUMNS else "x" for name in ROW_COLUMNS)
    path = tmp_path / "audit.jsonl"
    previous = os.umask(0o022)
    try:
        JsonlSink(str(path)).send([row])
        JsonlSink(str(path)).send([row])
    finally:
        os.umask(previous)
    assert path.stat().st_mode & 0o777 == 0o600
    assert len(path.read_text(encoding="utf-8").splitlines()) == 2
