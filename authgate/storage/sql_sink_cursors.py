"""``SqlSinkCursorStore``: SIEM delivery cursors and leases in SQLite or PostgreSQL.

A few statements a second at most (one deliverer per sink renews its lease and moves its
cursor once per batch), so SQLAlchemy Core. Every change of ownership or position is one
conditional UPDATE whose row count decides (as the single-use factor stores do): two
workers or instances racing for a lease cannot both win, and a deliverer that lost its
lease cannot move the cursor. Implements ``interfaces.SinkCursorStore``.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, and_, func, insert, or_, select, update
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError

from authgate.storage.guard import storage_guard
from authgate.storage.sink_rows import SinkCursor
from authgate.storage.tables import audit_events
from authgate.storage.tables_sinks import audit_sink_cursors as cur
from authgate.storage.timeconv import from_micros, to_micros


class SqlSinkCursorStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def ensure(self, sink: str, *, now: datetime) -> SinkCursor:
        """A new sink starts after the newest record stored now: it is not sent the whole
        history (``authgate audit export`` is how a new SIEM gets that)."""
        found = self.read(sink)
        if found is not None:
            return found
        try:
            with storage_guard(), self._engine.begin() as conn:
                newest = conn.execute(
                    select(func.coalesce(func.max(audit_events.c.id), 0))).scalar_one()
                conn.execute(insert(cur).values(
                    sink=sink, last_id=int(newest), last_ts=0, updated_at=to_micros(now),
                    owner="", lease_until=0))
        except IntegrityError:
            pass  # another worker created it first
        created = self.read(sink)
        assert created is not None  # noqa: S101 - inserted above or by the racing worker
        return created

    def read(self, sink: str) -> SinkCursor | None:
        with storage_guard(), self._engine.connect() as conn:
            row = conn.execute(select(cur).where(cur.c.sink == sink)).first()
        return _cursor(row) if row is not None else None

    def claim(self, sink: str, *, owner: str, now: datetime, until: datetime) -> bool:
        free = or_(cur.c.owner == owner, cur.c.lease_until < to_micros(now))
        return self._update(and_(cur.c.sink == sink, free),
                            owner=owner, lease_until=to_micros(until))

    def advance(self, sink: str, *, owner: str, expected: int, last_id: int, last_ts: int,
                now: datetime, until: datetime) -> bool:
        held = and_(cur.c.sink == sink, cur.c.owner == owner, cur.c.last_id == expected,
                    cur.c.lease_until >= to_micros(now))
        return self._update(held, last_id=last_id, last_ts=last_ts,
                            updated_at=to_micros(now), lease_until=to_micros(until))

    def release(self, sink: str, *, owner: str) -> None:
        self._update(and_(cur.c.sink == sink, cur.c.owner == owner), lease_until=0)

    def _update(self, where: object, **values: object) -> bool:
        with storage_guard(), self._engine.begin() as conn:
            result = conn.execute(update(cur).where(where).values(**values))  # type: ignore[arg-type]
        return int(result.rowcount) == 1


def _cursor(row: Row[tuple[object, ...]]) -> SinkCursor:
    m = row._mapping
    return SinkCursor(sink=str(m["sink"]), last_id=int(m["last_id"]),
                      last_ts=from_micros(int(m["last_ts"])) if m["last_ts"] else None,
                      updated_at=from_micros(int(m["updated_at"])),
                      owner=str(m["owner"]),
                      lease_until=from_micros(int(m["lease_until"])))
