"""The audit console: auditors search the login history and download it (ASVS 7.x).

Read-only by construction: GET views only, one ``require("auditor")`` decorator each (role
from policy ``roles.auditor_groups``, then the policy's rule for ``/audit`` at mfa); everyone
else gets 403. Paging is keyset on the record id (newest first), never OFFSET. A download
streams the same filter as CSV or JSON lines with a signed manifest, and is itself an
``audit.export`` record written before the first byte.
"""
from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from flask import Blueprint, Response, abort, g, render_template, request, stream_with_context
from werkzeug.wrappers import Response as BaseResponse

from authgate.audit.export import MEDIA_TYPES, Format, export_event, stream_export
from authgate.audit.names import NameMask, is_pseudonym
from authgate.core.values import Outcome
from authgate.storage.audit_rows import AuditFilter, AuditRow, stored_event
from authgate.storage.interfaces import AuditStore
from authgate.web.access import require
from authgate.web.context import remote_ip_text, request_id, services, user_agent
from authgate.web.labels import filter_events
from authgate.web.timefmt import day_end, day_start, display_zone, parse_day

bp = Blueprint("auditor", __name__, url_prefix="/audit")
PAGE = 50
_OUTCOMES = tuple(o.value for o in Outcome)
#: what browsers fetch on their own: forward-auth decisions for these clutter every history,
#: so the console hides them unless asked ("show all requests"); the trail and every export
#: keep them (issue 17 item 10)
STATIC_NOISE = frozenset({"/favicon.ico", "/robots.txt", "/apple-touch-icon.png",
                          "/apple-touch-icon-precomposed.png", "/browserconfig.xml",
                          "/site.webmanifest"})


def day_arg(name: str, *, end: bool = False) -> datetime | None:
    """The query argument ``name``, a day in the policy's time zone, as a UTC instant: its
    local midnight, or with ``end`` the next one ("until" includes that whole day). 400 if
    malformed."""
    try:
        day = parse_day(request.args.get(name, ""))
    except ValueError:
        abort(400)
    if day is None:
        return None
    zone = display_zone()
    return day_end(day, zone=zone) if end else day_start(day, zone=zone)


def is_noise(row: AuditRow) -> bool:
    """A forward-auth decision for a file browsers request by themselves."""
    return row.event == "verify" and row.path.split("?", 1)[0] in STATIC_NOISE


@dataclass
class Sieve:
    """Lets through the rows a page lists (all, or all but the static noise) and counts
    what it held back, so a page never reads "nothing recorded" over hidden records."""

    everything: bool
    hidden: int = 0

    def rows(self, rows: Iterable[AuditRow]) -> Iterator[AuditRow]:
        for row in rows:
            if not self.everything and is_noise(row):
                self.hidden += 1
                continue
            yield row


def show_all() -> bool:
    """The "show all requests" toggle (``?all=1``); never part of an export's filter."""
    return request.args.get("all", "") == "1"


def _filter() -> AuditFilter:
    """The search as typed; unknown outcomes are refused rather than ignored."""
    args = request.args
    outcome = args.get("outcome", "").strip()
    if outcome and outcome not in _OUTCOMES:
        abort(400)
    return AuditFilter(since=day_arg("since"), until=day_arg("until", end=True),
                       username=args.get("user", "").strip()[:256],
                       host=args.get("app", "").strip().lower()[:256],
                       event=args.get("event", "").strip()[:64], outcome=outcome)


def pseudonym_of(user: str) -> str:
    """The pseudonym under which attempts with this name the directory did not confirm
    are recorded (``audit.names``); "" for no name or a pseudonym already."""
    name = user.strip().lower()
    if not name or is_pseudonym(name):
        return ""
    return NameMask.for_keyring(services().audit.keyring).pseudonym(name)


def audit_store() -> AuditStore:
    """The store the composition root built (``Services.audit_store``)."""
    return services().audit_store


@bp.get("/")
@require("auditor")
def search() -> str:
    wanted = _filter()
    before = request.args.get("before", type=int) or 0
    sieve = Sieve(everything=show_all())
    stream = audit_store().stream_rows(wanted, after_id=before, batch=PAGE + 1,
                                       descending=True)
    rows = list(itertools.islice(sieve.rows(stream), PAGE + 1))
    more = len(rows) > PAGE
    shown = [row_view(r) for r in rows[:PAGE]]
    query = {k: v for k, v in request.args.items() if k not in ("before", "all") and v}
    return render_template("audit_search.html", rows=shown, query=query,
                           next_before=shown[-1]["id"] if more else None,
                           outcomes=_OUTCOMES, events=filter_events(), session=g.session,
                           sieve=sieve, pseudonym=pseudonym_of(wanted.username))


def row_view(row: AuditRow) -> dict[str, Any]:
    """One record as the search and timeline templates show it."""
    event = stored_event(row).event
    detail = dict(event.detail)
    actor = detail.get("actor", "")
    why = detail.get("why", "")
    return {"id": row.id, "ts": event.time,
            "event": event.event, "outcome": event.outcome.value, "reason": event.reason,
            "user": event.username, "ip": event.client_ip, "host": event.host,
            "method": event.method, "path": event.path, "rule": event.rule_id,
            "actor": actor, "why": why}


@bp.get("/export.<fmt>")
@require("auditor")
def download(fmt: str) -> BaseResponse:
    if fmt not in MEDIA_TYPES:
        abort(404)
    chosen = cast(Format, fmt)
    svc = services()
    wanted = _filter()
    log = svc.audit
    signer = log.signer  # the composition root always gives one
    if signer is None:
        abort(503)
    log.record(export_event(wanted, chosen, via="web", username=g.session.username,
                            client_ip=remote_ip_text(), user_agent=user_agent(),
                            request_id=request_id(), path=request.path))
    now = svc.clock.now()
    body = stream_export(audit_store(), wanted, fmt=chosen, signer=signer, generated_at=now,
                         batch=svc.settings.audit.batch_size)
    name = f"authgate-audit-{now.strftime('%Y%m%dT%H%M%SZ')}.{fmt}"
    return Response(stream_with_context(body), mimetype=MEDIA_TYPES[fmt].split(";")[0],
                    headers={"Content-Disposition": f'attachment; filename="{name}"',
                             "Cache-Control": "no-store"})
