"""The written reason every destructive admin action needs, one rule for the console and the
CLI (ASVS 7.1.x: administrative actions are logged with who did it and why)."""
from __future__ import annotations

MIN_REASON = 5
MAX_REASON = 300


class ReasonRequired(ValueError):
    """Destructive admin actions need a written reason for the audit trail."""


def need_reason(reason: str) -> str:
    """The reason as recorded (whitespace collapsed, at most ``MAX_REASON`` characters);
    raises ``ReasonRequired`` when it is shorter than ``MIN_REASON``."""
    reason = " ".join(reason.split())
    if len(reason) < MIN_REASON:
        raise ReasonRequired(f"give a reason (at least {MIN_REASON} characters)")
    return reason[:MAX_REASON]
