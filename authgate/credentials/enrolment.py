"""Admin-bound enrolment (the city's key requirement; NIST 63B 6.1.2.1, ASVS 2.3.1).

A user with no factor may enrol only with a code an admin issued for them: random, single
use, expiring, stored as a keyed hash, bound to the user. A stolen password alone can never
enrol an attacker's device.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from authgate.core.values import Level, Outcome, RequestMeta, SessionRecord
from authgate.credentials.factor_audit import FactorAudit, new_id
from authgate.factors import hash_enrolment_code, new_enrolment_code
from authgate.factors.errors import FactorError
from authgate.policy.globals import PolicyGlobals
from authgate.policy.values import IPAddress
from authgate.regulation import FactorOutcome, Regulator
from authgate.storage.interfaces import EnrolmentCodeStore
from authgate.storage.rows import EnrolmentCodeRow

#: the reason ``redeem_reason`` returns (and audits) for a code spent
REDEEMED = "redeemed"
#: how long a redeemed admin enrolment code lets this session bind factors
ENROL_CODE_WINDOW = timedelta(minutes=15)


@dataclass(frozen=True)
class IssuedCode:
    code: str  # shown once to the admin, who hands it to the user out of band
    username: str
    expires_at: datetime


class EnrolmentService:
    def __init__(self, *, codes: EnrolmentCodeStore, key: bytes, record: FactorAudit,
                 previous_keys: tuple[bytes, ...] = ()) -> None:
        self._codes = codes
        self._key = key
        #: keys of earlier session keys (``keys rotate session``): codes issued before a
        #: rotation stay redeemable until they expire
        self._previous = previous_keys
        self._record = record

    def issue(self, *, username: str, issued_by: str, ttl: timedelta, meta: RequestMeta,
              reason: str = "") -> IssuedCode:
        now = self._record.clock.now()
        code = new_enrolment_code()
        row = EnrolmentCodeRow(id=new_id(), username=username, issued_by=issued_by,
                               created_at=now, expires_at=now + ttl, used_at=None,
                               revoked_at=None)
        self._codes.add(row, hash_enrolment_code(code, key=self._key))
        self._record("enrol.code_issued", Outcome.SUCCESS, "issued", username=username,
                     meta=meta, actor=issued_by, why=reason, code_id=row.id,
                     expires_at=row.expires_at.isoformat())
        return IssuedCode(code, username, row.expires_at)

    def redeem(self, *, username: str, code: str, meta: RequestMeta,
               regulator: Regulator) -> bool:
        """Spend the code if it is live and this user's (``redeem_reason``)."""
        return self.redeem_reason(username=username, code=code, meta=meta,
                                  regulator=regulator) == REDEEMED

    def redeem_reason(self, *, username: str, code: str, meta: RequestMeta,
                      regulator: Regulator) -> str:
        """Spend the code if it is live and this user's; return the audited reason
        (``REDEEMED`` on success), so the page can tell "expired" from a typo after the
        password step (issue 17 item 6; never another user's code from a wrong one).

        Guesses are throttled per user by the regulator's second-factor counter (a code is
        a second secret like a TOTP code; ASVS 2.2.1, NIST 63B 5.2.2): once it refuses, no
        code is even looked at, and the answer is the same as for a wrong code."""
        admission = regulator.admit_factor(username=username)
        if not admission.allowed:
            self._record("enrol.code_redeemed", Outcome.FAILURE, "code_throttled",
                         username=username, meta=meta)
            return "code_throttled"
        reason = self._spend(username=username, code=code, meta=meta)
        regulator.record_factor(admission=admission, outcome=FactorOutcome.SUCCESS
                                if reason == REDEEMED else FactorOutcome.FAILURE,
                                meta=meta)
        return reason

    def _spend(self, *, username: str, code: str, meta: RequestMeta) -> str:
        now = self._record.clock.now()
        try:
            code_hash = hash_enrolment_code(code, key=self._key)
        except FactorError:
            reason = "malformed_code"
        else:  # a code issued before a key rotation still redeems under its earlier key
            redeemed = any(self._codes.redeem(
                username=username, code_hash=hash_enrolment_code(code, key=key), now=now)
                for key in (self._key, *self._previous))
            reason = REDEEMED if redeemed \
                else _why_refused(self._codes.state(code_hash), username, now)
        self._record("enrol.code_redeemed",
                     Outcome.SUCCESS if reason == REDEEMED else Outcome.FAILURE, reason,
                     username=username, meta=meta)
        return reason

    def revoke(self, *, code_id: str, username: str, by: str, meta: RequestMeta,
               reason: str = "") -> bool:
        """Revoke ``username``'s code ``code_id``; another user's code id is refused."""
        if not any(row.id == code_id for row in self._codes.list_for(username)):
            self._record("enrol.code_revoked", Outcome.FAILURE, "other_users_code",
                         username=username, meta=meta, code_id=code_id, actor=by, why=reason)
            return False
        ok = self._codes.revoke(code_id, self._record.clock.now())
        self._record("enrol.code_revoked", Outcome.SUCCESS if ok else Outcome.FAILURE,
                     "revoked" if ok else "not_live", username=username, meta=meta,
                     code_id=code_id, actor=by, why=reason)
        return ok

    def refuse(self, *, username: str, kind: str, reason: str, meta: RequestMeta) -> None:
        """Audit a binding the enrolment rule (``may_enrol``) refused, with its reason."""
        self._record("enrol.refused", Outcome.FAILURE, reason, username=username, meta=meta,
                     factor=kind)

    def codes_for(self, username: str) -> list[EnrolmentCodeRow]:
        return self._codes.list_for(username)


def _why_refused(row: EnrolmentCodeRow | None, username: str, now: datetime) -> str:
    if row is None:
        return "unknown_code"
    if row.username != username:
        return "other_users_code"
    if row.used_at is not None:
        return "code_reused"
    if row.revoked_at is not None:
        return "code_revoked"
    if row.expires_at <= now:
        return "code_expired"
    return "code_refused"


def authenticated_within(session: SessionRecord, *, now: datetime, within: timedelta) -> bool:
    """The one freshness test (ASVS 3.7.1): the session's last login is no older than
    ``within``. Every "recent login" check in authgate goes through here."""
    return now - session.auth_time <= within


def fresh_strong_login(session: SessionRecord, *, now: datetime, within: timedelta) -> bool:
    """Changing one's own factors (NIST 63B 6.1.2.1): a login at ``mfa`` or above, no
    older than ``within``."""
    return session.level.satisfies(Level.MFA) and authenticated_within(
        session, now=now, within=within)


#: what a user may bind: an authenticator app (and recovery codes, also typed codes) or a
#: WebAuthn credential, which can make a session ``phishing_resistant``
FactorKind = Literal["totp", "recovery", "webauthn"]


@dataclass(frozen=True)
class EnrolPermit:
    """The enrolment rule's answer; ``reason`` names the rule that decided (for the audit)."""

    allowed: bool
    reason: str


def _live(until: str, now: datetime) -> bool:
    return bool(until) and datetime.fromisoformat(until) > now


def may_enrol(*, kind: FactorKind, session: SessionRecord, now: datetime,
              policy: PolicyGlobals, has_factors: bool, ip: IPAddress | None) -> EnrolPermit:
    """NIST 63B 6.1.2.1 (binding an additional authenticator needs authentication at the
    AAL the new one confers), issue 14 finding 3. Pure: the caller looks the facts up.

    * A live admin code (redeemed by this session) allows any factor while its window lasts
      (``ENROL_CODE_WINDOW``): the person the service desk checked sets up their devices
      (typically an app and a key) in one sitting, in this session only.
    * A WebAuthn credential can confer ``phishing_resistant`` (AAL3), so without a code it
      needs a fresh ``phishing_resistant`` login: a password + TOTP session (what a
      real-time phisher can have) never adds a key.
    * A typed-code factor (TOTP, recovery codes) needs a fresh login at ``mfa`` or above, or,
      for a user with no factor yet, a first-enrolment network the policy names.
    """
    if _live(session.data.get("enrol_until", ""), now):
        return EnrolPermit(True, "admin_code")
    within = policy.enrolment.fresh_auth_for_new_factor
    if kind == "webauthn":
        strong = session.level.satisfies(Level.PHISHING_RESISTANT) and authenticated_within(
            session, now=now, within=within)
        return EnrolPermit(strong, "fresh_phishing_resistant" if strong
                           else "webauthn_needs_code")
    if has_factors:
        fresh = fresh_strong_login(session, now=now, within=within)
        return EnrolPermit(fresh, "fresh_strong_login" if fresh else "login_not_fresh")
    trusted = ip is not None and any(
        ip in net for name in policy.enrolment.first_enrolment_networks
        for net in policy.networks.get(name, ()))
    return EnrolPermit(trusted, "first_enrolment_network" if trusted else "no_enrolment_code")
