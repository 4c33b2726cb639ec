"""Sign-in history for the person signing in: "were there failures I did not make?"

ASVS 2.2.3 and NIST 63B 8.1 ask that users learn of sign-in activity they did not cause,
but a warning that also shows their own typos, or the same failures at every sign-in,
trains people to click through it (issue 17 item 2). So:

* a sign-in is *completed* when the browser arrives where it was going, whatever the
  factor (password, password + code or key, recovery code, passkey); the first arrival of
  a session records ``login.completed`` once;
* the warning at a completion lists the failures since the previous completion, so each
  failure is shown once: the next completion moves the boundary past it;
* the failures this browser made during this attempt (the request ids the page session
  remembers, in Flask's signed cookie) are the user's own typos and are left out, except
  a failure that is never a typo (``NEVER_OWN``: a cloned key's counter going back).
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from authgate.audit import AuditLog
from authgate.core.values import AuditEvent, Outcome, RequestMeta, StoredAuditEvent
from authgate.storage.interfaces import AuditStore

COMPLETED = "login.completed"
#: every step that can fail when someone tries to sign in as the user
SIGN_IN_EVENTS = ("login.password", "login.totp", "login.webauthn", "login.recovery",
                  "login.passkey")
FACTOR_EVENTS = ("factor.added", "factor.removed", "admin.factors_reset",
                 "factor.recovery_codes")
#: failures that are never a typo, so they are shown even when this browser made them: a
#: key whose signature counter went back is a cloned authenticator (WebAuthn 6.1.1)
NEVER_OWN = frozenset({"sign_count_regressed"})
#: how far back the history reaches (a completion older than this is no boundary)
HISTORY_DAYS = 30


@dataclass(frozen=True)
class SignInCheck:
    """What to tell the user at a completed sign-in."""

    previous: StoredAuditEvent | None  # the previous completed sign-in, if any
    failures: tuple[StoredAuditEvent, ...]  # unseen and not this attempt's, newest first


@dataclass(frozen=True)
class Activity:
    """The account page's "recent activity": completions, failures and device changes."""

    previous: StoredAuditEvent | None  # the completion before the current one
    failures_since: tuple[StoredAuditEvent, ...]  # since the current sign-in completed
    recent: tuple[StoredAuditEvent, ...]  # newest first


def _events(store: AuditStore, username: str, names: Iterable[str],
            since: datetime) -> list[StoredAuditEvent]:
    found: list[StoredAuditEvent] = []
    for name in names:
        found.extend(store.query(username=username, event=name, since=since))
    return sorted(found, key=lambda e: e.id, reverse=True)


def unseen_failures(events: list[StoredAuditEvent], *, boundary: int,
                    own_request_ids: frozenset[str]) -> tuple[StoredAuditEvent, ...]:
    """Failures after ``boundary`` (an audit id) that this browser did not make (or that
    are never a typo: ``NEVER_OWN``). Pure."""
    return tuple(e for e in events if e.id > boundary and e.event.event in SIGN_IN_EVENTS
                 and e.event.outcome is Outcome.FAILURE
                 and (e.event.request_id not in own_request_ids
                      or e.event.reason in NEVER_OWN))


def complete_sign_in(store: AuditStore, log: AuditLog, *, username: str, level: str,
                     own_request_ids: frozenset[str], now: datetime,
                     meta: RequestMeta) -> SignInCheck:
    """Record a completed sign-in and return the failures to show at it (each only once)."""
    events = _events(store, username, (COMPLETED, *SIGN_IN_EVENTS),
                     now - timedelta(days=HISTORY_DAYS))
    previous = next((e for e in events if e.event.event == COMPLETED), None)
    failures = unseen_failures(events, boundary=previous.id if previous else 0,
                               own_request_ids=own_request_ids)
    log.record(AuditEvent.for_request(meta, COMPLETED, Outcome.SUCCESS, "signed_in",
                                      username=username, level=level,
                                      failures_shown=str(len(failures))))
    return SignInCheck(previous, failures)


def recent_activity(store: AuditStore, *, username: str, now: datetime) -> Activity:
    """The account page: what happened lately, one row per sign-in rather than per step
    (successful steps are left out: a completion stands for them)."""
    events = _events(store, username, (COMPLETED, *SIGN_IN_EVENTS, *FACTOR_EVENTS),
                     now - timedelta(days=HISTORY_DAYS))
    shown = [e for e in events if e.event.event not in SIGN_IN_EVENTS
             or e.event.outcome is Outcome.FAILURE]
    completions = [e for e in events if e.event.event == COMPLETED]
    previous = completions[1] if len(completions) > 1 else None
    # Failures before the current sign-in completed were shown then (or were this
    # browser's own typos); the alert counts only what happened since (issue 17 item 2).
    if not completions:
        return Activity(previous, (), tuple(shown[:50]))
    failures = tuple(e for e in shown if e.id > completions[0].id
                     and e.event.event in SIGN_IN_EVENTS)
    return Activity(previous, failures, tuple(shown[:50]))
