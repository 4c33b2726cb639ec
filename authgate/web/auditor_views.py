"""The auditor's per-user timeline and the summary view (read-only, like the search).

Dates are days of the policy's time zone (``web.timefmt``); the timeline's form shows back
exactly the inclusive days it searched, so submitting it again finds the same records
(issue 17 item 1).
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, abort, g, render_template, request

from authgate.storage.audit_rows import AuditFilter
from authgate.web.access import require
from authgate.web.auditor import Sieve, audit_store, row_view, show_all
from authgate.web.context import services
from authgate.web.timefmt import day_end, day_start, display_zone, local_day, parse_day

bp = Blueprint("auditor_views", __name__, url_prefix="/audit")
TIMELINE_LIMIT = 2000


@dataclass(frozen=True)
class Period:
    """Inclusive local days ``first``..``last``, and the UTC instants that bound them."""

    first: date
    last: date
    since: datetime
    until: datetime


def period_of(since_raw: str, until_raw: str, *, today: date, zone: ZoneInfo) -> Period:
    """The days a timeline covers: as typed, or the last 7 days up to and including today.
    Raises ValueError for a malformed date or an end before the start."""
    last = parse_day(until_raw) or today
    first = parse_day(since_raw) or min(last, today) - timedelta(days=6)
    if last < first:
        raise ValueError("the end date is before the start date")
    return Period(first, last, day_start(first, zone=zone), day_end(last, zone=zone))


@bp.get("/timeline")
@require("auditor")
def timeline() -> str | tuple[str, int]:
    """Everything one person did or had done to them over a period, oldest first."""
    user = request.args.get("user", "").strip().lower()[:256]
    zone = display_zone()
    since_raw, until_raw = request.args.get("since", ""), request.args.get("until", "")
    try:
        period = period_of(since_raw, until_raw,
                           today=local_day(services().clock.now(), zone=zone), zone=zone)
    except ValueError:
        return render_template("audit_timeline.html", session=g.session, user=user, days={},
                               since=since_raw[:10], until=until_raw[:10], sieve=Sieve(True),
                               error="The dates are not a period: give the start date "
                                     "first, as YYYY-MM-DD."), 400
    sieve = Sieve(everything=show_all())
    rows: list[dict[str, Any]] = []
    if user:
        wanted = AuditFilter(since=period.since, until=period.until, username=user)
        stream = audit_store().stream_rows(wanted, batch=500)
        rows = [row_view(r) for r in itertools.islice(sieve.rows(stream), TIMELINE_LIMIT + 1)]
    days: dict[str, list[dict[str, Any]]] = {}
    for row in rows[:TIMELINE_LIMIT]:
        days.setdefault(local_day(row["ts"], zone=zone).isoformat(), []).append(row)
    return render_template("audit_timeline.html", session=g.session, user=user, days=days,
                           truncated=len(rows) > TIMELINE_LIMIT, sieve=sieve,
                           since=period.first.isoformat(), until=period.last.isoformat())


@bp.get("/summary")
@require("auditor")
def summary() -> str:
    """Sign-ins, failures, denials and bans per day; the sources failing most; what
    report-only rules would have done (issue 19 item 3)."""
    days = request.args.get("days", default=14, type=int)
    if not 1 <= days <= 366:
        abort(400)
    now = services().clock.now()
    since = (now - timedelta(days=days - 1)).replace(hour=0, minute=0, second=0, microsecond=0)
    until = now + timedelta(seconds=1)
    store = audit_store()
    counts = store.daily_counts(since=since, until=until)
    trials, partial = store.report_only_counts(since=since, until=until)
    return render_template("audit_summary.html", session=g.session, days=days, counts=counts,
                           sources=store.top_failing_sources(since=since, until=until),
                           trials=trials, trials_partial=partial,
                           peak=max((c.failures for c in counts), default=0),
                           generated=datetime.now(UTC))
