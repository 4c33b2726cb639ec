"""What the SOC's text parsers read: no field forges another, and the severity is the event's.

Issue 16 items 6 and 7 (severity). Real UDP syslog receivers on loopback, real SQLite trails,
the real login form (Flask test client).
"""
from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote

import pytest

from authgate.audit.chain import Keyring
from authgate.audit.log import AuditLog
from authgate.audit.sinks import SinkFanout
from authgate.composition.root import build_services
from authgate.config.audit import DeliverySettings, SinkSettings
from authgate.core.clock import FixedClock
from authgate.core.values import Outcome
from authgate.storage.engine import make_engine, migrate
from authgate.storage.sql_audit import SqlAuditStore
from authgate.storage.sql_sink_cursors import SqlSinkCursorStore
from tests.audit.conftest import TickingClock, event
from tests.audit.test_sinks import RFC5424
from tests.conftest import AuthActions, make_settings

FORGER = "bob host=finance.city.test reason=password_ok"
#: what a SIEM's automatic key=value extraction does: quoted or bare values, whole line
_KV = re.compile(r'(\w+)=("[^"]*"|\S+)')


def naive_pairs(text: str) -> dict[str, list[str]]:
    pairs: dict[str, list[str]] = {}
    for key, value in _KV.findall(text):
        pairs.setdefault(key, []).append(value.strip('"'))
    return pairs


def split_pairs(msg: str) -> dict[str, list[str]]:
    """An even more naive parser: split MSG on spaces, each ``k=v`` token is a pair."""
    pairs: dict[str, list[str]] = {}
    for token in msg.split():
        key, eq, value = token.partition("=")
        if eq:
            pairs.setdefault(key, []).append(value)
    return pairs


@pytest.fixture
def receiver() -> Iterator[socket.socket]:
    listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    listener.bind(("127.0.0.1", 0))
    listener.settimeout(5)
    yield listener
    listener.close()


def _received(listener: socket.socket, count: int) -> list[re.Match[str]]:
    messages = [RFC5424.match(listener.recv(65535).decode()) for _ in range(count)]
    assert all(messages), "not RFC 5424"
    return [m for m in messages if m]


def _first(listener: socket.socket, msgid: str) -> re.Match[str]:
    """The first message with this MSGID (others, e.g. a policy load, come before it)."""
    while True:
        (message,) = _received(listener, 1)
        if message["msgid"] == msgid:
            return message


def _udp_log(tmp_path: Path, listener: socket.socket) -> tuple[AuditLog, SinkFanout]:
    url = f"sqlite:///{tmp_path / 'siem.db'}"
    migrate(url)
    engine = make_engine(url)
    store, clock = SqlAuditStore(engine), TickingClock()
    sinks = SinkFanout([SinkSettings(type="syslog", transport="udp", host="127.0.0.1",
                                     port=listener.getsockname()[1])],
                       store=store, cursors=SqlSinkCursorStore(engine), clock=clock,
                       options=DeliverySettings(poll_interval=0.05))
    log = AuditLog(store, clock, keyring=Keyring.from_secrets("s" * 40), sinks=sinks)
    return log, sinks


def test_a_forging_username_typed_in_the_login_form_is_one_user_value(
        tmp_path: Path, users_file: Path, receiver: socket.socket) -> None:
    """The attack: that name through the real login form; a naive key=value parser of the
    syslog line sees one user value, no forged host and the real reason."""
    from authgate.web import create_app

    settings = make_settings(tmp_path, users_file, audit={"sinks": [
        {"type": "syslog", "transport": "udp", "host": "127.0.0.1",
         "port": receiver.getsockname()[1]}]})
    migrate(settings.storage.url)
    services = build_services(settings, clock=FixedClock())
    client = create_app({"services": services, "TESTING": True}).test_client()
    AuthActions(client).login(FORGER, "Winter2026!")
    assert services.audit.sinks.wait_idle(5)
    line = _first(receiver, "login.password")
    whole, msg = naive_pairs(line.string), split_pairs(line["msg"])
    assert len(set(whole["user"])) == 1 and len(msg["user"]) == 1
    assert set(whole["host"]) <= {"", "-"} and msg["host"] == ["-"]
    assert set(whole["reason"]) == {"unknown_user"} and msg["reason"] == ["unknown_user"]
    services.audit.sinks.close()


def test_msg_values_cannot_forge_pairs_whatever_the_stored_text(
        tmp_path: Path, receiver: socket.socket) -> None:
    """A name stored as typed (a directory name with spaces, or records older than the
    pseudonyms) still gives one user value; the MSG value decodes back to the name."""
    log, sinks = _udp_log(tmp_path, receiver)
    log.record(event(1, username=FORGER + ' "x=1', host="wiki.city.test",
                     outcome=Outcome.DENY, reason="denied_by_rule"))
    (line,) = _received(receiver, 1)
    msg = split_pairs(line["msg"])
    assert [unquote(v) for v in msg["user"]] == [FORGER + ' "x=1']
    assert msg["host"] == ["wiki.city.test"] and msg["reason"] == ["denied_by_rule"]
    assert set(naive_pairs(line.string)["host"]) == {"wiki.city.test"}
    assert set(naive_pairs(line["msg"])["reason"]) == {"denied_by_rule"}
    sinks.close()


def test_json_lines_keep_each_field_whole(tmp_path: Path) -> None:
    """The JSON sink: one object per line, the name one string value (render.json_line)."""
    target = tmp_path / "siem.jsonl"
    url = f"sqlite:///{tmp_path / 'json.db'}"
    migrate(url)
    engine = make_engine(url)
    store, clock = SqlAuditStore(engine), TickingClock()
    sinks = SinkFanout([SinkSettings(type="jsonl", path=str(target))], store=store,
                       cursors=SqlSinkCursorStore(engine), clock=clock,
                       options=DeliverySettings(poll_interval=0.05))
    log = AuditLog(store, clock, keyring=Keyring.from_secrets("s" * 40), sinks=sinks)
    name = FORGER + '","host":"finance.city.test","x":"\\'
    log.record(event(1, username=name, host="wiki.city.test"))
    assert sinks.wait_idle(5)
    (line,) = target.read_text().splitlines()
    record = json.loads(line)
    assert record["username"] == name and record["host"] == "wiki.city.test"
    sinks.close()


@pytest.mark.parametrize(("kind", "outcome", "reason", "expected"), [
    ("login.break_glass", Outcome.INFO, "break_glass_used", 4),
    ("ban.spray", Outcome.DENY, "password_spray", 4),
    ("admin.factors_reset", Outcome.SUCCESS, "reset", 4),
    ("directory.service_bind", Outcome.DENY, "service_bind_refused", 3),
    ("audit.verify", Outcome.FAILURE, "truncated", 2),
    ("audit.verify", Outcome.SUCCESS, "intact", 6),
    ("audit.checkpoint", Outcome.INFO, "checkpoint_interval", 5),
    ("verify", Outcome.ALLOW, "allowed", 6),
    ("verify", Outcome.ERROR, "storage_error", 3),
])
def test_severity_comes_from_the_event(tmp_path: Path, receiver: socket.socket, kind: str,
                                       outcome: Outcome, reason: str, expected: int) -> None:
    """Break-glass use, a spray ban, a factor reset, the service circuit opening and audit
    damage reach the SIEM at warning or higher (issue 16 item 7), whatever the outcome."""
    log, sinks = _udp_log(tmp_path, receiver)
    log.record(event(1, event=kind, outcome=outcome, reason=reason))
    (line,) = _received(receiver, 1)
    assert int(line["pri"]) == 10 * 8 + expected
    sinks.close()
