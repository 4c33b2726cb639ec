"""What the audit trail tells Prometheus: every decision and sign-in step is counted from
the record that audits it, so the figures and the trail cannot disagree, and every label
value comes from the catalogue (``catalog.REASONS``) or the approved policy's rule ids.

``/verify`` pays for at most two metric writes (a counter here, its latency histogram in
``web.metrics``); the append latency is timed for one record in ``APPEND_SAMPLE``, which
keeps the distribution honest (every kind of record is sampled alike) at a sixteenth of the
cost.
"""
from __future__ import annotations

import itertools
from time import perf_counter

from prometheus_client import Counter

from authgate.audit.catalog import REASONS
from authgate.core.metrics import (
    AUDIT_APPEND_FAILURES,
    AUDIT_APPEND_SECONDS,
    DECISIONS,
    LOGIN_OUTCOMES,
    SPRAY_DETECTIONS,
)
from authgate.core.values import AuditEvent

APPEND_SAMPLE = 16
_appends = itertools.count()
_decisions: dict[tuple[str, str], Counter] = {}  # children cached: labels() takes a lock


def observe_append(event: AuditEvent, started: float) -> None:
    """Count ``event`` (already stored) and, one time in ``APPEND_SAMPLE``, how long the
    append that began at ``started`` (``time.perf_counter``) took."""
    if not next(_appends) % APPEND_SAMPLE:
        AUDIT_APPEND_SECONDS.observe(perf_counter() - started)
    name = event.event
    if name == "verify":
        key = (event.outcome.value, event.rule_id or "(none)")
        child = _decisions.get(key)
        if child is None:
            child = _decisions[key] = DECISIONS.labels(*key)
        child.inc()
    elif name.startswith("login."):
        reason = event.reason if event.reason in REASONS else "other"
        LOGIN_OUTCOMES.labels(name[6:], event.outcome.value, reason).inc()
    elif name == "ban.spray":
        SPRAY_DETECTIONS.inc()


def append_failed() -> None:
    """A record could not be stored: the trail cannot say so, the figures must."""
    AUDIT_APPEND_FAILURES.inc()


def unaudited_refusal() -> None:
    """``/verify`` refused a request whose error record could not be stored (the database
    is down): counted as an error decision all the same, so a dashboard shows the outage as
    refusals instead of as silence."""
    DECISIONS.labels("error", "(none)").inc()
