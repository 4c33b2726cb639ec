"""``StoreRegulator``: the brute-force and spray defence the login flow calls (issue 7).

Ban before bind (Authelia), per-user and per-IP sliding windows with escalating bans, smart
lockout (familiar IPs keep their own counter and a reserved part of AD's budget), repeated
wrong passwords counted once, spray detection reported as a high-severity audit event, and a
mirror of AD's failure chain that never lets authgate lock an account in Active Directory.
ASVS 2.2.1 (anti-automation without lockout abuse), NIST SP 800-63B 5.2.2 (rate limiting).

Passwords are only ever reduced to HMAC-SHA256 under a key derived from the session secret;
the keyed hashes live for the policy window, at most ``PASSWORD_MEMORY`` per user.
"""
from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import secrets
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from authgate.audit import AuditLog
from authgate.core.clock import Clock
from authgate.core.values import AuditEvent, Outcome, RequestMeta
from authgate.regulation import ADMIT, Admission
from authgate.regulation.adpolicy import AdLockoutSource
from authgate.regulation.limits import Limits, ip_subject
from authgate.regulation.state import Ban, RegulationStore, Reservation
from authgate.regulation.timing import FailureFloor

_log = logging.getLogger("authgate.regulation")
#: Failures AD did not count as a bad password: no bind was sent, or the account was
#: already locked (775: AD does not count further failures). The AD slot is given back.
NO_AD_COUNT = frozenset({"unknown_user", "empty_password", "ambiguous_user",
                         "malformed_input", "account_locked"})
#: The password was right, the account state refused it (773, 532, 533, 701 come only
#: with the right password): not a guess. Nothing is counted and its hash is not kept.
RIGHT_PASSWORD = frozenset({"password_must_change", "password_expired", "account_disabled",
                            "account_expired", "password_change_rejected",
                            "password_changed", "directory_unavailable"})
#: The bind was sent but its answer lost: not a guess authgate could judge, but AD may have
#: counted it, so the AD slot is kept (a slow DC must never become a way round the guard).
INTERRUPTED = frozenset({"bind_interrupted"})
SPRAY_REASONS = frozenset({"spray_source", "password_spray"})
PURGE_EVERY = 256


@dataclass(frozen=True)
class _Pending:
    reservation: Reservation
    started: float


# The attempt admitted in this request; ``record_password`` settles it (same thread/context).
_PENDING: ContextVar[_Pending | None] = ContextVar("authgate_regulation_pending", default=None)
_FACTOR: ContextVar[str | None] = ContextVar("authgate_regulation_factor", default=None)


class StoreRegulator:
    """The ``Regulator`` contract over a ``RegulationStore`` shared by all instances."""

    def __init__(self, *, store: RegulationStore, regulation: Callable[[], Any],
                 ad: AdLockoutSource, clock: Clock, audit: AuditLog, key: bytes,
                 canonical: Callable[[str], str] = lambda name: name,
                 floor: FailureFloor | None = None) -> None:
        self.store = store
        self._regulation = regulation  # re-read per call: a policy reload applies at once
        self.ad = ad
        self._clock = clock
        self._audit = audit
        self._key = key
        self._canonical = canonical
        self.floor = floor or FailureFloor()
        self._records = 0

    def limits(self) -> Limits:
        return Limits.from_policy(self._regulation(), self.ad.budget())

    def password_mac(self, password: str) -> str:
        return hmac.new(self._key, password.encode("utf-8", "surrogatepass"),
                        hashlib.sha256).hexdigest()

    # -- passwords ----------------------------------------------------------------------------
    def admit_password(self, *, username: str, ip: str, password: str | None = None
                       ) -> Admission:
        """Before the bind: bans, counters and the AD budget, and a reservation if admitted.
        A refusal is padded to the failure floor so that it cannot be told from a wrong
        password by its timing."""
        started = self.floor.monotonic()
        _PENDING.set(None)
        limits = self.limits()
        mac = self.password_mac(password) if password else None
        verdict = self.store.admit(attempt=secrets.token_hex(16),
                                   username=self._canonical(username), ip=ip_subject(ip),
                                   password_mac=mac, limits=limits, now=self._clock.now())
        if verdict.reservation is None:
            self.floor.pad(started)
            return Admission(False, verdict.reason)
        _PENDING.set(_Pending(verdict.reservation, started))
        return ADMIT

    def record_password(self, *, username: str, ip: str, password: str, success: bool,
                        reason: str) -> None:
        """Settle the admitted attempt. ``reason`` decides how: a guess (counted once), no
        guess (``RIGHT_PASSWORD``: given back; ``directory_unavailable`` means no bind was
        sent), or a lost answer (``INTERRUPTED``: the AD slot is kept)."""
        pending = _PENDING.get()
        _PENDING.set(None)
        if pending is None or pending.reservation.ip != ip_subject(ip):
            _log.warning("record_password without an admitted attempt (user %r)", username)
            return
        r, now = pending.reservation, self._clock.now()
        if reason in RIGHT_PASSWORD or reason in INTERRUPTED:  # before success: a password
            # change proves the old password, but whether AD then resets badPwdCount is not
            # documented, so it must not reset the mirror; the next sign-in will
            self.store.settle_neutral(r, keep_ad_slot=reason in INTERRUPTED, now=now)
            return
        if success:
            self.store.settle_success(r, now=now)
            return
        limits = self.limits()
        if reason == "invalid_credentials":
            self.floor.observe(self.floor.monotonic() - pending.started)
        settlement = self.store.settle_failure(r, password_mac=self.password_mac(password),
                                               bind_reached=reason not in NO_AD_COUNT,
                                               limits=limits, now=now)
        for ban in settlement.bans:
            self._audit_ban(ban, username=r.username, ip=ip)
        self._maybe_purge(limits)
        self.floor.pad(pending.started)

    # -- second factors -----------------------------------------------------------------------
    def admit_factor(self, *, username: str) -> Admission:
        attempt = secrets.token_hex(16)
        _FACTOR.set(None)
        reason = self.store.admit_factor(attempt=attempt, username=username,
                                         limits=self.limits_without_ad(),
                                         now=self._clock.now())
        if reason:
            self._audit.record(AuditEvent(event="login.factor", outcome=Outcome.DENY,
                                          reason=reason, username=username))
            return Admission(False, reason)
        _FACTOR.set(attempt)
        return ADMIT

    def record_factor(self, *, username: str, success: bool) -> None:
        attempt = _FACTOR.get() or secrets.token_hex(16)
        _FACTOR.set(None)
        ban = self.store.settle_factor(attempt=attempt, username=username, success=success,
                                       limits=self.limits_without_ad(), now=self._clock.now())
        if ban is not None:
            self._audit_ban(ban, username=username, ip="")

    def limits_without_ad(self) -> Limits:
        """Second factors never reach AD: their throttle does not depend on reading it."""
        return Limits.from_policy(self._regulation(), None)

    # -- operators ----------------------------------------------------------------------------
    def active_bans(self) -> list[Ban]:
        return self.store.active_bans(self._clock.now())

    def lift(self, target: str, *, operator: str, reason: str,
             meta: RequestMeta | None = None) -> list[str]:
        """Lift the bans on a user (every bucket and the second-factor ban) or an IP.
        The AD guard is not lifted: it only protects the account in AD. Audited."""
        subjects, prefixes = lift_subjects(target, self._canonical)
        lifted = self.store.lift(subjects, prefixes=prefixes)
        meta = meta or RequestMeta(client_ip="cli")
        self._audit.record(AuditEvent(
            event="ban.lift", outcome=Outcome.SUCCESS, reason="operator_lift",
            username=target.strip().lower(), client_ip=meta.client_ip,
            user_agent=meta.user_agent, request_id=meta.request_id,
            detail=(("actor", operator), ("lifted", ",".join(_shown(s) for s in lifted)),
                    ("why", reason))))
        return lifted

    def _audit_ban(self, ban: Ban, *, username: str, ip: str) -> None:
        spray = ban.reason in SPRAY_REASONS
        kind = "spray" if spray else ban.subject.split(":", 1)[0].replace("userip", "user")
        self._audit.record(AuditEvent(
            event=f"ban.{kind}", outcome=Outcome.DENY, reason=ban.reason, username=username,
            client_ip=ip,
            detail=(("severity", "high" if spray else "medium"),
                    ("subject", _shown(ban.subject)), ("until", ban.until.isoformat()),
                    ("level", str(ban.level)))))

    def _maybe_purge(self, limits: Limits) -> None:
        self._records += 1
        if self._records % PURGE_EVERY:
            return
        now = self._clock.now()
        keep = max(limits.window, limits.ad.window if limits.ad else limits.window)
        self.store.purge(now, now - keep)


def lift_subjects(target: str, canonical: Callable[[str], str]
                  ) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``USER`` or ``IP`` → the subjects to lift and the prefixes of per-IP user buckets."""
    text = target.strip()
    try:
        ipaddress.ip_address(text)
    except ValueError:
        name = canonical(text.lower())
        return (f"user:{name}", f"factor:{name}"), (f"userip:{name}|",)
    return (f"ip:{ip_subject(text)}",), ()


def _shown(subject: str) -> str:
    """Never put even a keyed password hash in the audit record."""
    return "pw:<password>" if subject.startswith("pw:") else subject
