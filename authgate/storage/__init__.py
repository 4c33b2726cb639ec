"""Persistence behind small interfaces (SQLAlchemy 2 Core; SQLite and PostgreSQL).

Times are stored as integer microseconds since the Unix epoch (UTC): portable, exact,
sortable and cheap to convert on the hot ``/verify`` path.
"""
from __future__ import annotations

from authgate.storage.engine import make_engine, migrate
from authgate.storage.interfaces import AuditStore, SessionStore

__all__ = ["AuditStore", "SessionStore", "make_engine", "migrate"]
