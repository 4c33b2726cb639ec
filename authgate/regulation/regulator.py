"""``StoreRegulator``: the brute-force and spray defence the login flow calls (issue 7).

Ban before bind (Authelia), per-user and per-IP sliding windows with escalating bans, smart
lockout (familiar IPs keep their own counter and a reserved part of AD's budget), repeated
wrong passwords counted once, spray detection reported as a high-severity audit event, and a
mirror of AD's failure chain that never lets authgate lock an account in Active Directory.
ASVS 2.2.1 (anti-automation without lockout abuse), NIST SP 800-63B 5.2.2 (rate limiting).

Passwords are only ever reduced to HMAC-SHA256 under a key derived from the session secret;
the keyed hashes live for the policy window, at most ``PASSWORD_MEMORY`` per user. While the
AD guard holds an account, the verifier of the password AD last accepted (``verifier.py``)
lets the rightful user through without a bind that AD could count (issue 15 finding 6).
"""
from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from authgate.audit import AuditLog
from authgate.audit.names import NameMask
from authgate.core.clock import Clock
from authgate.core.values import AuditEvent, Outcome, RequestMeta
from authgate.regulation import (
    Admission,
    AttemptOutcome,
    FactorOutcome,
    shown_subject,
)
from authgate.regulation.adpolicy import AdLockoutSource
from authgate.regulation.limits import Limits, ip_subject
from authgate.regulation.rules import AD_GUARD, USER_LIMITS, PolicyRules
from authgate.regulation.timing import FailureFloor, Floor
from authgate.regulation.verifier import PasswordVerifier
from authgate.storage.interfaces import RegulationStore
from authgate.storage.regulation_rows import Ban, Reservation, Verdict
from authgate.storage.step_interfaces import FactorCounters

_log = logging.getLogger("authgate.regulation")
#: Not a guess authgate could judge: the attempt is taken back (``settle_neutral``).
GIVEN_BACK = frozenset({AttemptOutcome.RIGHT_PASSWORD_REFUSED,
                        AttemptOutcome.PASSWORD_CHANGED, AttemptOutcome.UNAVAILABLE,
                        AttemptOutcome.INTERRUPTED})
SPRAY_REASONS = frozenset({"spray_source", "password_spray"})
#: Outcomes that show the directory found the account: only then is the name a ban's audit
#: record shows the typed name itself, not its pseudonym (``audit.names``).
NAME_CONFIRMED = frozenset({AttemptOutcome.WRONG_PASSWORD, AttemptOutcome.BIND_REFUSED})
PURGE_EVERY = 256
#: ``Admission.reason`` of an attempt the AD guard held but the password verifier vouched for.
VOUCHED = "password_verifier"  # noqa: S105 - a reason name
#: refusals the password verifier may lift: the AD guard, and the account's own bans and
#: throttle (``rules.USER_LIMITS``); never a ban on the address or a sprayed password
VOUCHABLE = frozenset({AD_GUARD, *USER_LIMITS})
#: ``pwdLastSet`` of an account as the directory says it now; None when it cannot say (the
#: account may not sign in, is unknown, or the directory is down).
PasswordStamp = Callable[[str], "str | None"]


@dataclass
class _Ticket:
    """The reservation behind a password ``Admission``; settled once."""

    reservation: Reservation
    started: float  # monotonic, for the failure floor
    client_ip: str  # as seen, for the ban's audit record
    vouched: bool = False  # admitted past the AD guard by the password verifier
    settled: bool = False


@dataclass(frozen=True)
class Vouching:
    """The password verifier and the directory's current ``pwdLastSet``; both or neither."""

    verifier: PasswordVerifier
    stamp: PasswordStamp


@dataclass
class _FactorTicket:
    attempt: str
    username: str
    settled: bool = False


class StoreRegulator:
    """The ``Regulator`` contract over a ``RegulationStore`` shared by all instances."""

    def __init__(self, *, store: RegulationStore, regulation: Callable[[], Any],
                 ad: AdLockoutSource, clock: Clock, audit: AuditLog, key: bytes,
                 canonical: Callable[[str], str] = lambda name: name,
                 floor: Floor | None = None, vouching: Vouching | None = None) -> None:
        self.store = store
        self._regulation = regulation  # re-read per call: a policy reload applies at once
        self.ad = ad
        self._clock = clock
        self._audit = audit
        self._key = key
        self._canonical = canonical
        self.floor: Floor = floor or FailureFloor()
        self.vouching = vouching
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
        password by its timing. An attempt held only by the AD guard is admitted when the
        password verifier vouches for it (``_vouched``)."""
        started = self.floor.monotonic()
        name, limits = self._canonical(username), self.limits()
        mac = self.password_mac(password) if password else None
        verdict = self._admit(name, ip, mac, PolicyRules(limits))
        vouched = False
        if verdict.reason in VOUCHABLE and password:
            vouched = self._vouched(name, password)
            if vouched:
                verdict = self._admit(name, ip, mac,
                                      PolicyRules(limits, ad_guard=False, vouched=True))
        if verdict.reservation is None:
            self.floor.pad(started)
            return Admission(False, verdict.reason)
        return Admission(True, VOUCHED if vouched else "",
                         reservation=_Ticket(verdict.reservation, started, ip, vouched))

    def rehearse_failure(self, bind: Callable[[], object]) -> float:
        """One dummy failed attempt shaped like a real one, for the failure floor's seed
        (issue 15 item 9): the admission's database work, ``bind`` (a refused bind for a
        name no account has) and a settlement, for a probe name from a documentation
        address (RFC 5737). It counts against nothing: the reservation is given back."""
        started = self.floor.monotonic()
        verdict = self._admit(f"timing-probe-{secrets.token_hex(8)}", "192.0.2.1", None,
                              PolicyRules(self.limits()))
        bind()
        if verdict.reservation is not None:
            self.store.settle_neutral(verdict.reservation, keep_ad_slot=False,
                                      now=self._clock.now())
        return self.floor.monotonic() - started

    def _admit(self, name: str, ip: str, mac: str | None, rules: PolicyRules) -> Verdict:
        return self.store.admit(attempt=secrets.token_hex(16), username=name,
                                ip=ip_subject(ip), password_mac=mac, rules=rules,
                                now=self._clock.now())

    def _vouched(self, name: str, password: str) -> bool:
        """Would AD accept this password? Only if it matches the verifier of the password AD
        last accepted (one argon2id verification, also when there is none) and
        ``pwdLastSet`` has not moved since: then the bind cannot add a bad-password count.
        A moved stamp means a change or an admin reset: the verifier is deleted."""
        if self.vouching is None:
            return False
        proof = self.vouching.verifier.match(username=name, password=password)
        if proof is None:
            return False
        current = self.vouching.stamp(name)
        if current is not None and current != proof.password_stamp:
            self.vouching.verifier.forget(name)
        return bool(current) and current == proof.password_stamp

    def record_password(self, *, admission: Admission, outcome: AttemptOutcome,
                        password: str, password_stamp: str = "") -> None:
        """Settle the admitted attempt by its outcome: a guess (counted once), not a guess
        (``GIVEN_BACK``; the AD slot kept only when the bind may have reached AD), or a
        success. Every admission is settled at most once."""
        ticket = admission.reservation
        if not isinstance(ticket, _Ticket) or ticket.settled:
            _log.warning("record_password without an unsettled admitted attempt")
            return
        ticket.settled = True
        r, now = ticket.reservation, self._clock.now()
        self._keep_verifier(ticket, outcome, password=password, stamp=password_stamp)
        if outcome in GIVEN_BACK:
            self.store.settle_neutral(r, keep_ad_slot=outcome is AttemptOutcome.INTERRUPTED,
                                      now=now)
            return
        if outcome is AttemptOutcome.SUCCESS:
            self.store.settle_success(r, now=now)
            return
        limits = self.limits()
        if outcome is AttemptOutcome.WRONG_PASSWORD:
            self.floor.observe(self.floor.monotonic() - ticket.started)
        settlement = self.store.settle_failure(
            r, password_mac=self.password_mac(password),
            bind_reached=outcome is not AttemptOutcome.NOT_SENT, rules=PolicyRules(limits),
            now=now)
        for ban in settlement.bans:
            self._audit_ban(ban, username=r.username, ip=ticket.client_ip,
                            confirmed=outcome in NAME_CONFIRMED)
        self._maybe_purge(limits)
        self.floor.pad(ticket.started)

    def _keep_verifier(self, ticket: _Ticket, outcome: AttemptOutcome, *, password: str,
                       stamp: str) -> None:
        """Replace the verifier on each success (only where AD can lock: an AD budget
        source), and on a change through authgate with the new password when its new
        ``pwdLastSet`` is known (else the user was left without one until her next sign-in
        at a familiar address: the outside test of issue 15); delete it when the password
        changed otherwise or a vouched password failed."""
        if self.vouching is None or not self.ad.present:
            return
        name = ticket.reservation.username
        accepted = (AttemptOutcome.SUCCESS, AttemptOutcome.PASSWORD_CHANGED)
        if stamp and outcome in accepted:
            self.vouching.verifier.remember(username=name, password=password,
                                            password_stamp=stamp)
        elif outcome is AttemptOutcome.PASSWORD_CHANGED or (ticket.vouched and outcome not in (
                AttemptOutcome.SUCCESS, AttemptOutcome.UNAVAILABLE)):
            self.vouching.verifier.forget(name)

    # -- second factors -----------------------------------------------------------------------
    def admit_factor(self, *, username: str) -> Admission:
        admission = self.reserve_factor(self.store, username=username)
        if not admission.allowed:
            self.factor_refused(username=username, reason=admission.reason)
        return admission

    def reserve_factor(self, counters: FactorCounters | RegulationStore, *,
                       username: str) -> Admission:
        attempt = secrets.token_hex(16)
        reason = counters.admit_factor(attempt=attempt, username=username,
                                       rules=PolicyRules(self.limits_without_ad()),
                                       now=self._clock.now())
        if reason:
            return Admission(False, reason)
        return Admission(True, reservation=_FactorTicket(attempt, username))

    def factor_refused(self, *, username: str, reason: str) -> None:
        self._audit.record(AuditEvent(event="login.factor", outcome=Outcome.DENY,
                                      reason=reason, username=username))

    def factor_succeeded(self, counters: FactorCounters, *, admission: Admission) -> None:
        """As ``record_factor(SUCCESS)``, on the caller's transaction. The ticket is
        settled only in that transaction's own writes: if it rolls back, so does the
        reservation it would have settled."""
        ticket = admission.reservation
        if not isinstance(ticket, _FactorTicket) or ticket.settled:
            _log.warning("factor_succeeded without an unsettled admitted attempt")
            return
        ticket.settled = True
        counters.clear_factor_failures(username=ticket.username, now=self._clock.now())

    def factor_given_back(self, counters: FactorCounters, *, admission: Admission) -> None:
        """The admitted attempt neither failed nor succeeded (a right recovery code for a
        session that ended meanwhile): its reservation is deleted on the caller's
        transaction, as if it had never been made."""
        ticket = admission.reservation
        if not isinstance(ticket, _FactorTicket) or ticket.settled:
            _log.warning("factor_given_back without an unsettled admitted attempt")
            return
        ticket.settled = True
        counters.release_factor(attempt=ticket.attempt, username=ticket.username)

    def record_factor(self, *, admission: Admission, outcome: FactorOutcome,
                      meta: RequestMeta | None = None) -> None:
        ticket = admission.reservation
        if not isinstance(ticket, _FactorTicket) or ticket.settled:
            _log.warning("record_factor without an unsettled admitted attempt")
            return
        ticket.settled = True
        ban = self.store.settle_factor(attempt=ticket.attempt, username=ticket.username,
                                       success=outcome is FactorOutcome.SUCCESS,
                                       rules=PolicyRules(self.limits_without_ad()),
                                       now=self._clock.now())
        if ban is not None:
            self._audit_ban(ban, username=ticket.username, ip="", confirmed=True, asked=meta)

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
            username=target.strip().lower(), **meta.asked(),
            detail=(("actor", operator), ("lifted", ",".join(shown_subject(s) for s in lifted)),
                    ("why", reason))))
        return lifted

    def _audit_ban(self, ban: Ban, *, username: str, ip: str, confirmed: bool,
                   asked: RequestMeta | None = None) -> None:
        """The ban's audit record; a name the directory did not confirm appears (as user
        and inside the subject) only as its pseudonym (``audit.names``). ``asked``: the
        request that started the ban (its address, agent, id, method and path)."""
        spray = ban.reason in SPRAY_REASONS
        kind = "spray" if spray else ban.subject.split(":", 1)[0].replace("userip", "user")
        shown = NameMask.for_keyring(self._audit.keyring).recorded(username,
                                                                   confirmed=confirmed)
        self._audit.record(AuditEvent(
            event=f"ban.{kind}", outcome=Outcome.DENY, reason=ban.reason, username=shown,
            **(asked.asked() if asked is not None else {"client_ip": ip}),
            detail=(("severity", "high" if spray else "medium"),
                    ("subject", audited_subject(ban.subject, username, shown)),
                    ("until", ban.until.isoformat()),
                    ("level", str(ban.level)))))

    def _maybe_purge(self, limits: Limits) -> None:
        self._records += 1
        if self._records % PURGE_EVERY:
            return
        now = self._clock.now()
        keep = max(limits.window, limits.ad.window if limits.ad else limits.window)
        self.store.purge(now, now - keep)


def audited_subject(subject: str, name: str, shown: str) -> str:
    """``shown_subject`` with the user name of a ``user:``, ``factor:`` or ``userip:``
    subject replaced by how the audit record shows it."""
    kind, _, rest = subject.partition(":")
    if name and name != shown and kind in ("user", "factor", "userip") and (
            rest == name or rest.startswith(name + "|")):
        return f"{kind}:{shown}{rest[len(name):]}"
    return shown_subject(subject)


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

