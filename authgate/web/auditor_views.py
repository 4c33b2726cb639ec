"""The auditor's per-user timeline and the summary view (read-only, like the search)."""
from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Blueprint, abort, g, render_template, request

from authgate.storage.audit_rows import AuditFilter
from authgate.web.access import require
from authgate.web.auditor import audit_store, day_arg, row_view
from authgate.web.context import services

bp = Blueprint("auditor_views", __name__, url_prefix="/audit")
TIMELINE_LIMIT = 2000


@bp.get("/timeline")
@require("auditor")
def timeline() -> str:
    """Everything one person did or had done to them over a period, oldest first."""
    user = request.args.get("user", "").strip().lower()[:256]
    now = services().clock.now()
    since = day_arg("since") or (now - timedelta(days=7)).replace(hour=0, minute=0, second=0,
                                                               microsecond=0)
    until = day_arg("until", end=True) or now + timedelta(seconds=1)
    rows: list[dict[str, Any]] = []
    if user:
        wanted = AuditFilter(since=since, until=until, username=user)
        rows = [row_view(r) for r in itertools.islice(
            audit_store().stream_rows(wanted, batch=500), TIMELINE_LIMIT + 1)]
    days: dict[str, list[dict[str, Any]]] = {}
    for row in rows[:TIMELINE_LIMIT]:
        days.setdefault(row["time"][:10], []).append(row)
    return render_template("audit_timeline.html", session=g.session, user=user, days=days,
                           truncated=len(rows) > TIMELINE_LIMIT,
                           since=since.date().isoformat(),
                           until=(until - timedelta(days=1)).date().isoformat())


@bp.get("/summary")
@require("auditor")
def summary() -> str:
    """Sign-ins, failures, denials and bans per day; the sources failing most."""
    days = request.args.get("days", default=14, type=int)
    if not 1 <= days <= 366:
        abort(400)
    now = services().clock.now()
    since = (now - timedelta(days=days - 1)).replace(hour=0, minute=0, second=0, microsecond=0)
    until = now + timedelta(seconds=1)
    store = audit_store()
    counts = store.daily_counts(since=since, until=until)
    return render_template("audit_summary.html", session=g.session, days=days, counts=counts,
                           sources=store.top_failing_sources(since=since, until=until),
                           peak=max((c.failures for c in counts), default=0),
                           generated=datetime.now(UTC))
