"""A forked process must never end its parent's hot-path database session.

gunicorn (``--preload``), ``authgate audit verify --jobs`` and the tests fork processes that
inherit the parent's hot-path connection (``storage.fastpath``): the *parent's* socket. A
child that first checked whether the server had hung up on it saw the parent's reply in
flight as "hung up" and closed it: psycopg's close sent PostgreSQL a Terminate on that
socket, the server ended the parent's session in the middle of the parent's insert, and
that insert failed (seen as a flaky ``test_processes_write_their_own_chains[postgres]``).
Here the child always finds the socket readable, as it does when the race goes that way.
"""
from __future__ import annotations

import gc
import os

import pytest
from sqlalchemy import Engine

from authgate.storage import fastpath

_WHO = {"postgresql": "SELECT pg_backend_pid()", "sqlite": "SELECT 1"}


def _child_uses(connections: fastpath.ThreadConnections, monkeypatch: pytest.MonkeyPatch,
                sql: str) -> None:
    code = 1
    try:
        monkeypatch.setattr(fastpath, "_hung_up", lambda conn: True)  # readable, as above
        connections.query(sql, [])  # its own connection, whatever it found
        connections.discard()  # and an error path: drops only what is the child's
        gc.collect()  # whatever the child let go of is finalised now
        code = 0
    finally:
        os._exit(code)


def test_a_child_never_closes_the_connection_it_inherited(
        engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    connections = fastpath.connections_for(engine)
    sql = _WHO[engine.dialect.name]
    session = connections.query(sql, [])  # the parent's connection, open before the fork
    for _ in range(3):
        pid = os.fork()
        if pid == 0:
            _child_uses(connections, monkeypatch, sql)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        # the parent's session is the same one, still answering (PostgreSQL: same backend)
        assert connections.query(sql, []) == session
