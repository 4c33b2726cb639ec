"""One audit record per second-factor outcome, and the random ids factors are stored under."""
from __future__ import annotations

import secrets

from authgate.audit import AuditLog
from authgate.core.clock import Clock
from authgate.core.values import AuditEvent, Outcome, RequestMeta


def new_id() -> str:
    """A credential or code id: 128 random bits, hex."""
    return secrets.token_hex(16)


class FactorAudit:
    """One audit record per factor outcome, with the request's metadata."""

    def __init__(self, audit: AuditLog, clock: Clock) -> None:
        self.audit = audit
        self.clock = clock

    def __call__(self, event: str, outcome: Outcome, reason: str, *, username: str,
                 meta: RequestMeta, **detail: str) -> None:
        self.audit.record(factor_event(event, outcome, reason, username=username, meta=meta,
                                       **detail))


def factor_event(event: str, outcome: Outcome, reason: str, *, username: str,
                 meta: RequestMeta, **detail: str) -> AuditEvent:
    """A factor outcome's audit record, with the request's metadata."""
    return AuditEvent(
        event=event, outcome=outcome, reason=reason, username=username,
        **meta.asked(),
        detail=tuple(sorted(detail.items())))
