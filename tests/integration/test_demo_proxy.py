"""Issue #14 finding 1 for ``make run``: the demo's forward-auth proxy judges the host it
serves (the sample app's own), the path as the client sent it, and the real peer address.

The proxy runs under werkzeug's real server on a free port (as ``authgate demo`` runs it);
requests are raw bytes, so absolute-form lines and spoofed headers reach it as sent.
"""
from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import select
from werkzeug.serving import make_server

from authgate.demo.proxy import ForwardAuthProxy
from authgate.demo.sample_app import app as sample_app
from authgate.storage.tables import audit_events
from tests.fixtures.net import free_port

pytestmark = pytest.mark.integration


@pytest.fixture
def demo(app) -> Iterator[int]:  # type: ignore[no-untyped-def]
    port = free_port()
    proxy = ForwardAuthProxy(app, sample_app, host=f"localhost:{port}")
    server = make_server("127.0.0.1", port, proxy, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield port
    server.shutdown()
    thread.join(5)


def _send(port: int, raw: bytes) -> tuple[int, bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(raw)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def _last_verify(services):  # type: ignore[no-untyped-def]
    with services.engine.connect() as conn:
        return conn.execute(select(audit_events).where(audit_events.c.event == "verify")
                            .order_by(audit_events.c.id.desc())).mappings().first()


def test_the_client_host_header_is_not_what_is_judged(demo: int, services) -> None:  # type: ignore[no-untyped-def]
    """``Host: evil.example`` used to be judged (and refused or, with a bypass rule for the
    named host, allowed); now the sample app's host is judged and served."""
    status, body = _send(demo, b"GET /public/whoami.json HTTP/1.1\r\nHost: evil.example\r\n"
                         b"X-Forwarded-For: 10.0.0.1\r\nX-Forwarded-Host: evil.example\r\n"
                         b"Connection: close\r\n\r\n")
    assert status == 200
    served = json.loads(body)
    row = _last_verify(services)
    assert (row["host"], row["path"]) == ("localhost", "/public/whoami.json")
    assert served["host"] == "localhost" and served["path"] == row["path"]
    assert row["client_ip"] == "127.0.0.1"  # the peer, not the client's X-Forwarded-For


@pytest.mark.parametrize("raw", [
    b"GET http://evil.example/public/whoami.json HTTP/1.1\r\nHost: localhost\r\n",
    b"GET /public/..;/forbidden/whoami.json HTTP/1.1\r\nHost: localhost\r\n",
    b"GET /public/..%2Fforbidden/whoami.json HTTP/1.1\r\nHost: localhost\r\n",
    b"GET /public/%2e%2e/forbidden/whoami.json HTTP/1.1\r\nHost: localhost\r\n",
    b"GET /forbidden;x/whoami.json HTTP/1.1\r\nHost: localhost\r\n",
])
def test_paths_and_request_lines_the_app_could_read_differently_are_refused(  # type: ignore[no-untyped-def]
        demo: int, raw: bytes) -> None:
    status, body = _send(demo, raw + b"Connection: close\r\n\r\n")
    assert status in (400, 403), (raw, status)
    assert b'"app"' not in body
