"""Raw DB-API access for the few statements on the ``/verify`` hot path.

SQLAlchemy Core costs ~50-80 µs per statement here, more than SQLite itself; the session
lookup runs on every request to every protected app. One DB-API connection per thread (and
per process: re-opened after fork) runs prepared SQL directly. Everything else keeps using
SQLAlchemy. Errors become ``StorageError`` and the connection is discarded.
"""
from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine

from authgate.errors import StorageError


class ThreadConnections:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._local = threading.local()
        self.placeholder = "?" if engine.dialect.paramstyle == "qmark" else "%s"

    def sql(self, text: str) -> str:
        """Write statements with ``?``; this adapts them to the driver's paramstyle."""
        return text if self.placeholder == "?" else text.replace("?", "%s")

    def _connection(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None or self._local.pid != os.getpid():
            conn = self._engine.raw_connection()
            self._local.conn, self._local.pid = conn, os.getpid()
        return conn

    def _discard(self) -> None:
        conn, self._local.conn = getattr(self._local, "conn", None), None
        if conn is not None:
            try:
                conn.invalidate()
            except Exception:  # noqa: BLE001, S110 - it is broken already; drop it
                pass

    def query(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        conn = self._connection()
        try:
            cur = conn.cursor()
            cur.execute(sql, params)
            rows = cur.fetchall()
            cur.close()
            if getattr(conn, "in_transaction", True):  # PostgreSQL: end the read transaction
                conn.commit()
            return list(rows)
        except Exception as exc:
            self._discard()
            raise StorageError(f"database error: {type(exc).__name__}") from exc

    def execute(self, sql: str, params: Sequence[Any]) -> int:
        conn = self._connection()
        try:
            cur = conn.cursor()
            cur.execute(sql, params)
            count = int(cur.rowcount)
            cur.close()
            conn.commit()
            return count
        except Exception as exc:
            self._discard()
            raise StorageError(f"database error: {type(exc).__name__}") from exc
