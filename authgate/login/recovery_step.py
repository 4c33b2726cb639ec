"""The recovery-code login step in two short transactions (issue 20 item 1).

Checking a code costs an argon2id verification per unspent code (``factors.recovery``),
far too long to hold SQLite's write lock for. So: (a) one short transaction checks the
throttle, reserves the attempt (counted as a failure at once, so parallel guesses stay
bounded) and reads the user's unspent code hashes; (b) the argon2 check runs outside any
transaction; (c) one transaction spends the matched code conditionally (of two concurrent
uses of one code exactly one wins, ASVS 2.6.1), forgets the user's factor failures,
replaces the session under a new id at ``mfa`` (ASVS 3.2.1) and stores the sealed audit
record, all in one COMMIT: never a spent code without its audit record, or an old session
id still working beside the new one. A code spent meanwhile rolls the whole completion back
and counts as a failure; a wrong code's reservation already counts, and is settled and
audited as the TOTP step's is (``login.second_factor.failed_step``).
"""
from __future__ import annotations

from dataclasses import dataclass

from authgate.audit import AuditLog
from authgate.audit.log import AuditSlot
from authgate.core.clock import Clock
from authgate.core.values import Level, Outcome, RequestMeta, SessionRecord
from authgate.credentials.factor_audit import factor_event
from authgate.credentials.recovery import RecoveryService
from authgate.factors.errors import InvalidRecoveryCode
from authgate.login.second_factor import StepAttempt, StepOutcome, failed_step
from authgate.regulation import Admission, Regulator
from authgate.sessions.service import Issued, SessionService
from authgate.storage.rows import RecoveryCodeRow
from authgate.storage.step_interfaces import LoginStepUnit, StepWrites

EVENT = "login.recovery"


@dataclass(frozen=True)
class SpentCode:
    """An accepted recovery code: the raised session and how many codes are left."""

    issued: Issued
    remaining: int


@dataclass(frozen=True)
class _Reserved:
    admission: Admission
    codes: list[RecoveryCodeRow]


class RecoveryLogin:
    """The recovery-code step of a login (``POST /login/recovery``)."""

    def __init__(self, *, recovery: RecoveryService, regulator: Regulator,
                 sessions: SessionService, audit: AuditLog, unit: LoginStepUnit,
                 clock: Clock) -> None:
        self._recovery = recovery
        self._regulator = regulator
        self._sessions = sessions
        self._audit = audit
        self._unit = unit
        self._clock = clock

    def recovery(self, *, session: SessionRecord, code: str, meta: RequestMeta) -> SpentCode:
        """The session raised to ``mfa`` under a new id, or ``StepRefused``,
        ``SessionGone`` or ``InvalidRecoveryCode``; every outcome audited."""
        attempt = StepAttempt(session, code, meta,
                              self._sessions.elevated(session, level=Level.MFA),
                              self._clock.now())
        reserved = self._unit.run(lambda writes: self._reserve(writes, session.username))
        outcome = self._checked(attempt, reserved)
        if outcome.audit_id:
            return SpentCode(attempt.raised, len(reserved.codes) - 1)
        raise failed_step(EVENT, outcome, username=session.username, meta=meta,
                          regulator=self._regulator, audit=self._audit)

    def _checked(self, attempt: StepAttempt, reserved: _Reserved) -> StepOutcome:
        """(b) the argon2 check, outside any transaction, then (c) the completion."""
        admission = reserved.admission
        if not admission.allowed:
            return StepOutcome(admission=admission)
        try:
            verified = self._recovery.check_code(code=attempt.code, codes=reserved.codes)
        except InvalidRecoveryCode as exc:
            return StepOutcome(admission=admission, error=exc)  # the reservation counts
        left = len(reserved.codes) - 1
        with self._audit.within() as slot:  # the audit lane first, then the transaction
            outcome = self._unit.run(lambda writes: self._complete(
                writes, attempt, admission, verified.code_id, left, slot))
            if outcome.audit_id:
                slot.stored(outcome.audit_id)
        return outcome

    def _reserve(self, writes: StepWrites, username: str) -> _Reserved:
        """Transaction (a): throttle and reservation, and the unspent codes' hashes."""
        admission = self._regulator.reserve_factor(writes, username=username)
        if not admission.allowed:
            writes.discard()
            return _Reserved(admission, [])
        return _Reserved(admission, writes.recovery_codes(username))

    def _complete(self, writes: StepWrites, attempt: StepAttempt, admission: Admission,
                  code_id: str, left: int, slot: AuditSlot) -> StepOutcome:
        """Transaction (c): every write of an accepted code, or none of them."""
        if not writes.replace_session(attempt.session.id_hash, attempt.raised.record):
            # nothing else written: the code stays unspent and the reservation is given
            # back, as a TOTP step for an ended session leaves nothing behind
            self._regulator.factor_given_back(writes, admission=admission)
            return StepOutcome(admission=admission, gone=True)
        if not writes.spend_recovery_code(code_id, attempt.now):
            writes.discard()  # spent meanwhile by a concurrent request: a failure
            return StepOutcome(admission=admission,
                               error=InvalidRecoveryCode("recovery_code_reused"))
        self._regulator.factor_succeeded(writes, admission=admission)
        record = slot.seal(factor_event(EVENT, Outcome.SUCCESS, "recovery_code_used",
                                        username=attempt.session.username, meta=attempt.meta,
                                        remaining=str(left)))
        return StepOutcome(admission=admission, audit_id=writes.append_audit(record))

