"""A user's recent sign-ins, so people notice what they did not do (ASVS 2.2.3, 2.5.5)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from authgate.core.values import Outcome, StoredAuditEvent
from authgate.storage.interfaces import AuditStore

SIGN_IN_EVENTS = ("login.password", "login.totp", "login.webauthn", "login.recovery",
                  "login.passkey")
FACTOR_EVENTS = ("factor.added", "factor.removed", "admin.factors_reset",
                 "factor.recovery_codes")


@dataclass(frozen=True)
class SignInHistory:
    last_success: StoredAuditEvent | None  # before the current sign-in
    failures_since: tuple[StoredAuditEvent, ...]
    recent: tuple[StoredAuditEvent, ...]  # newest first, sign-ins and factor changes


def sign_in_history(store: AuditStore, *, username: str, now: datetime,
                    days: int = 30, skip_latest_success: bool = True) -> SignInHistory:
    since = now - timedelta(days=days)
    events: list[StoredAuditEvent] = []
    for name in SIGN_IN_EVENTS + FACTOR_EVENTS:
        events.extend(store.query(username=username, event=name, since=since))
    events.sort(key=lambda e: e.id, reverse=True)
    successes = [e for e in events if e.event.event == "login.password"
                 and e.event.outcome is Outcome.SUCCESS]
    skip = 1 if skip_latest_success else 0
    previous = successes[skip] if len(successes) > skip else None
    boundary = previous.id if previous else 0
    failures = tuple(e for e in events if e.event.outcome is Outcome.FAILURE
                     and e.event.event in SIGN_IN_EVENTS and e.id > boundary)
    return SignInHistory(previous, failures, tuple(events[:50]))
