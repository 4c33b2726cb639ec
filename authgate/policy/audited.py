"""One audited ``/verify`` decision as the preview replays it (issue 19): the engine's
inputs as the record kept them, and what was decided then. Pure values."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from authgate.core.values import Level
from authgate.policy.values import IPAddress, Verdict


@dataclass(slots=True)
class AuditedDecision:
    """One audited ``/verify`` decision, with what the engine needs to decide it again."""

    record_id: int
    at: datetime
    host: str
    path: str
    method: str
    query: str
    user: str | None  # None: the request was judged anonymous
    groups: frozenset[str]
    level: Level
    auth_age: timedelta | None
    idle: timedelta | None
    ip: IPAddress | None
    verdict: Verdict  # as recorded
    rule_id: str | None  # as recorded; None for the default deny
    #: the level the deciding rule required then (None: it denied); records before it was
    #: recorded give the level the session held (readiness: a raise above it)
    was_required: Level | None = None
