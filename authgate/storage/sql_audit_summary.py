"""Aggregates for the auditor's summary view, computed by the database (GROUP BY), so a
month of records is summarised without reading them into the process."""
from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol

from authgate.storage.audit_rows import DayCounts, FailingSource, ReportOnlyCount
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


#: records read for the report-only table at most (a trial rule on a busy app: the table
#: then says it counted only the first ones)
REPORT_ONLY_ROWS = 100_000


def report_only_counts(store: RowReader, *, since: datetime, until: datetime,
                       limit: int = REPORT_ONLY_ROWS) -> tuple[list[ReportOnlyCount], bool]:
    """Per report-only rule and would-be outcome: requests, people, last time. The detail
    lists them as ``rule:outcome,...`` (``access.forward_auth``); the database narrows to
    ``verify`` records that carry one, the parsing is here. Also whether ``limit`` cut it."""
    m = store.mark
    sql = ("SELECT ts, username, detail FROM audit_events WHERE ts >= "  # noqa: S608
           f"{m} AND ts < {m} AND event = 'verify' AND detail LIKE '%\"report_only\"%' "
           f"ORDER BY ts LIMIT {int(limit) + 1}")
    rows = store.fetch(sql, [to_micros(since), to_micros(until)])
    counts: dict[tuple[str, str], list[Any]] = {}
    for ts, username, detail in rows[:limit]:
        try:
            listed = str(json.loads(detail).get("report_only", ""))
        except (ValueError, AttributeError):
            continue  # not a record this view can read: audit verify reports damage
        for entry in filter(None, listed.split(",")):
            rule, _, would = entry.partition(":")
            seen = counts.setdefault((rule, would), [0, set(), 0])
            seen[0] += 1
            seen[1].add(username)
            seen[2] = max(seen[2], int(ts))
    found = [ReportOnlyCount(rule, would, n, len(users - {""}),
                             datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=last))
             for (rule, would), (n, users, last) in counts.items()]
    found.sort(key=lambda c: (-c.requests, c.rule_id, c.would))
    return found, len(rows) > limit
