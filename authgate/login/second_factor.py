"""The second-factor login step as one transaction (issue 20 item 1).

A TOTP step checks the throttle and reserves the attempt, decrypts the seed and checks the
code, records the accepted time step (RFC 6238 5.2: once), forgets the user's factor
failures, replaces the session under a new id at the level proven (ASVS 3.2.1) and writes
the audit record, all in one short transaction (``storage.step_interfaces``): a failure at
any point leaves either all of it or none of it, never a spent code without its audit
record or an old session id still working beside the new one. A wrong or replayed code
commits only its reservation (counted as a failure at once, so parallel guesses stay
bounded); the failure's settlement and audit record follow as before.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from authgate.audit import AuditLog
from authgate.audit.log import AuditSlot
from authgate.core.clock import Clock
from authgate.core.errors import AuthgateError
from authgate.core.values import Level, Outcome, RequestMeta, SessionRecord
from authgate.credentials.factor_audit import factor_event
from authgate.credentials.totp import TotpService
from authgate.factors.errors import CodeReplayed, FactorError, InvalidCode
from authgate.regulation import Admission, FactorOutcome, Regulator
from authgate.sessions.service import Issued, SessionService
from authgate.storage.rows import CredentialRow
from authgate.storage.step_interfaces import LoginStepUnit, StepWrites


class StepRefused(AuthgateError):
    """The throttle refused the step before anything was checked; already audited."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class SessionGone(AuthgateError):
    """The session ended while its step ran: nothing was written (the code is not spent)."""

    reason = "session_gone"


@dataclass(frozen=True)
class StepAttempt:
    """One step's request: the session, what was typed, and the session it would become."""

    session: SessionRecord
    code: str
    meta: RequestMeta
    raised: Issued
    now: datetime


@dataclass(frozen=True)
class StepOutcome:
    """What the transaction did; acted on once it has ended."""

    admission: Admission | None = None
    error: FactorError | None = None
    audit_id: int = 0  # the success record's id: the step committed
    gone: bool = False
    credential: str = ""  # the factor's row id, once known: the failure record names it


class SecondFactorLogin:
    """The TOTP step of a login (``POST /login/totp``), its writes in one transaction."""

    def __init__(self, *, totp: TotpService, regulator: Regulator, sessions: SessionService,
                 audit: AuditLog, unit: LoginStepUnit, clock: Clock) -> None:
        self._totp = totp
        self._regulator = regulator
        self._sessions = sessions
        self._audit = audit
        self._unit = unit
        self._clock = clock

    def totp(self, *, session: SessionRecord, code: str, meta: RequestMeta) -> Issued:
        """The session raised to ``mfa`` under a new id, or ``StepRefused``, ``SessionGone``
        or the check's ``FactorError`` (``CodeReplayed`` for a right code used before);
        every outcome audited."""
        attempt = StepAttempt(session, code, meta,
                              self._sessions.elevated(session, level=Level.MFA),
                              self._clock.now())
        with self._audit.within() as slot:  # the audit lane first, then the transaction
            outcome = self._unit.run(lambda writes: self._totp_writes(writes, attempt, slot))
            if outcome.audit_id:
                slot.stored(outcome.audit_id)
        if outcome.audit_id:
            return attempt.raised
        raise failed_step("login.totp", outcome, username=session.username, meta=meta,
                          regulator=self._regulator, audit=self._audit)

    def _totp_writes(self, writes: StepWrites, attempt: StepAttempt, slot: AuditSlot
                     ) -> StepOutcome:
        """The transaction: throttle, check, and on success every write of the step."""
        username = attempt.session.username
        admission = self._regulator.reserve_factor(writes, username=username)
        if not admission.allowed:
            writes.discard()
            return StepOutcome(admission=admission)
        error: FactorError = InvalidCode("no_totp_credential")
        for row in writes.totp_credentials(username):
            try:
                verified = self._totp.check_code(row, attempt.code, now=attempt.now)
            except CodeReplayed as exc:
                error = exc  # a right code seen before: someone else may have it
                break
            except FactorError as exc:
                error = exc
                continue
            if not writes.accept_step(row.id, verified.time_step, attempt.now):
                error = CodeReplayed()  # a concurrent request spent this step first
                break
            return self._accepted(writes, attempt, admission, row, slot)
        return StepOutcome(admission=admission, error=error)  # the reservation stays counted

    def _accepted(self, writes: StepWrites, attempt: StepAttempt, admission: Admission,
                  row: CredentialRow, slot: AuditSlot) -> StepOutcome:
        if not writes.replace_session(attempt.session.id_hash, attempt.raised.record):
            writes.discard()
            return StepOutcome(admission=admission, gone=True)
        self._regulator.factor_succeeded(writes, admission=admission)
        record = slot.seal(factor_event("login.totp", Outcome.SUCCESS, "totp_ok",
                                        username=attempt.session.username, meta=attempt.meta,
                                        credential=row.id))
        return StepOutcome(admission=admission, audit_id=writes.append_audit(record))


def failed_step(event: str, outcome: StepOutcome, *, username: str, meta: RequestMeta,
                regulator: Regulator, audit: AuditLog) -> AuthgateError:
    """Audit what a step's transaction refused, settle a counted failure; the error to
    raise. Runs after the transaction, which nothing else may write inside."""
    admission = outcome.admission
    if admission is not None and not admission.allowed:
        # the one record of a throttled step, with the request's id (outside test of
        # issue 20: the regulator's own record, without one, came beside the page's)
        audit.record(factor_event("login.factor", Outcome.DENY,
                                  admission.reason or "factor_throttled", username=username,
                                  meta=meta))
        return StepRefused(admission.reason)
    named = {"credential": outcome.credential} if outcome.credential else {}
    if outcome.gone:
        audit.record(factor_event(event, Outcome.FAILURE, "session_gone", username=username,
                                  meta=meta, **named))
        return SessionGone()
    error = outcome.error or InvalidCode()
    audit.record(factor_event(event, Outcome.FAILURE, error.reason, username=username,
                              meta=meta, **named))
    if admission is not None:
        regulator.record_factor(admission=admission, outcome=FactorOutcome.FAILURE,
                                meta=meta)
    return error
