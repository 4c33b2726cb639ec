"""Aggregates for the auditor's summary view, computed by the database (GROUP BY), so a
month of records is summarised without reading them into the process."""
from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol

from authgate.storage.audit_rows import DayCounts, FailingSource
from authgate.storage.timeconv import to_micros


class RowReader(Protocol):
    """What this module asks of ``SqlAuditStore`` (which calls it: no import back)."""

    mark: str

    def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...

_DAY_US = 86_400_000_000
_EPOCH = date(1970, 1, 1)


def daily_counts(store: RowReader, *, since: datetime, until: datetime) -> list[DayCounts]:
    m = store.mark
    # constants and placeholders only: nothing from the request is spliced in
    sql = (
        f"SELECT ts / {_DAY_US} AS day, "  # noqa: S608
        "SUM(CASE WHEN event LIKE 'login.%' AND outcome = 'success' THEN 1 ELSE 0 END), "
        "SUM(CASE WHEN event LIKE 'login.%' AND outcome = 'failure' THEN 1 ELSE 0 END), "
        "SUM(CASE WHEN event = 'verify' AND outcome = 'deny' THEN 1 ELSE 0 END), "
        "SUM(CASE WHEN event LIKE 'ban.%' AND event <> 'ban.lift' THEN 1 ELSE 0 END) "
        f"FROM audit_events WHERE ts >= {m} AND ts < {m} GROUP BY ts / {_DAY_US} ORDER BY 1")
    rows = store.fetch(sql, [to_micros(since), to_micros(until)])
    return [DayCounts(_EPOCH + timedelta(days=int(r[0])), *(int(x or 0) for x in r[1:]))
            for r in rows]


def top_failing_sources(store: RowReader, *, since: datetime, until: datetime,
                        limit: int = 10) -> list[FailingSource]:
    m = store.mark
    sql = ("SELECT client_ip, COUNT(*), COUNT(DISTINCT username), MAX(ts) FROM audit_events "  # noqa: S608
           f"WHERE ts >= {m} AND ts < {m} AND event LIKE 'login.%' AND outcome = 'failure' "
           f"GROUP BY client_ip ORDER BY 2 DESC, 1 LIMIT {int(limit)}")
    rows = store.fetch(sql, [to_micros(since), to_micros(until)])
    return [FailingSource(str(r[0]), int(r[1]), int(r[2]),
                   datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=r[3]))
            for r in rows]
