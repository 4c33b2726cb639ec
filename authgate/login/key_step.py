"""The security-key login step as one transaction (issue 20 item 1).

A WebAuthn second factor (``POST /login/webauthn/verify``) checks the throttle and reserves
the attempt, takes the session's challenge (single use: a DELETE, ASVS 2.9.2), verifies the
assertion (pure and fast: a signature check), stores the authenticator's new sign count
only if it is above the one stored at commit (WebAuthn §6.1.1, clone detection; the count
another tab's passkey stored meanwhile on PostgreSQL counts, pen test F2b), forgets the user's
factor failures, replaces the session under a new id at the level proven (ASVS 3.2.1) and
writes the audit record, all in one short transaction (``storage.step_interfaces``). A
refused assertion commits its reservation (counted at once) and the taken challenge (gone
whether or not it verified), and is then settled and audited as a wrong TOTP code is.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from authgate.audit import AuditLog
from authgate.audit.log import AuditSlot
from authgate.core.clock import Clock
from authgate.core.values import Level, Outcome, RequestMeta, SessionRecord
from authgate.credentials.factor_audit import factor_event
from authgate.credentials.webauthn import KeyProof, WebAuthnService, unb64url
from authgate.factors.errors import WebAuthnFailed
from authgate.login.second_factor import StepOutcome, failed_step
from authgate.regulation import Regulator
from authgate.sessions.service import Issued, SessionService
from authgate.storage.rows import CredentialRow
from authgate.storage.step_interfaces import LoginStepUnit, StepWrites

EVENT = "login.webauthn"


@dataclass(frozen=True)
class KeyAttempt:
    """One assertion for a session's challenge: what the browser sent and what is asked."""

    session: SessionRecord
    challenge_key: str
    credential_json: str
    require_uv: bool
    meta: RequestMeta
    now: datetime


@dataclass(frozen=True)
class _Raised:
    outcome: StepOutcome
    issued: Issued | None = None


class SecurityKeyLogin:
    """The security-key step of a login, its writes in one transaction."""

    def __init__(self, *, webauthn: WebAuthnService, regulator: Regulator,
                 sessions: SessionService, audit: AuditLog, unit: LoginStepUnit,
                 clock: Clock) -> None:
        self._webauthn = webauthn
        self._regulator = regulator
        self._sessions = sessions
        self._audit = audit
        self._unit = unit
        self._clock = clock

    def verify(self, *, session: SessionRecord, challenge_key: str, credential_json: str,
               require_uv: bool, meta: RequestMeta) -> Issued:
        """The session raised to ``phishing_resistant`` (user verified, key within the
        policy) or ``mfa`` under a new id, or ``StepRefused``, ``SessionGone`` or
        ``WebAuthnFailed``; every outcome audited."""
        attempt = KeyAttempt(session, challenge_key, credential_json, require_uv, meta,
                             self._clock.now())
        with self._audit.within() as slot:  # the audit lane first, then the transaction
            raised = self._unit.run(lambda writes: self._writes(writes, attempt, slot))
            if raised.outcome.audit_id:
                slot.stored(raised.outcome.audit_id)
        if raised.outcome.audit_id and raised.issued is not None:
            return raised.issued
        raise failed_step(EVENT, raised.outcome, username=session.username, meta=meta,
                          regulator=self._regulator, audit=self._audit)

    def _writes(self, writes: StepWrites, attempt: KeyAttempt, slot: AuditSlot) -> _Raised:
        """The transaction: throttle, challenge, assertion, and every write of the step."""
        admission = self._regulator.reserve_factor(writes, username=attempt.session.username)
        if not admission.allowed:
            writes.discard()
            return _Raised(StepOutcome(admission=admission))
        try:  # a refusal commits the reservation and the taken challenge
            row, challenge = self._key(writes, attempt)
        except WebAuthnFailed as exc:
            return _Raised(StepOutcome(admission=admission, error=exc))
        try:
            proof = self._proved(writes, attempt, row, challenge)
        except WebAuthnFailed as exc:  # the record names the key (pen test F3)
            return _Raised(StepOutcome(admission=admission, error=exc, credential=row.id))
        level = Level.PHISHING_RESISTANT if proof.strong else Level.MFA
        issued = self._sessions.elevated(attempt.session, level=level)
        if not writes.replace_session(attempt.session.id_hash, issued.record):
            writes.discard()
            return _Raised(StepOutcome(admission=admission, gone=True, credential=row.id))
        self._regulator.factor_succeeded(writes, admission=admission)
        record = slot.seal(factor_event(EVENT, Outcome.SUCCESS, proof.reason,
                                        username=attempt.session.username, meta=attempt.meta,
                                        credential=row.id))
        return _Raised(StepOutcome(admission=admission, audit_id=writes.append_audit(record)),
                       issued)

    def _key(self, writes: StepWrites, attempt: KeyAttempt) -> tuple[CredentialRow, bytes]:
        """The challenge taken and the session user's key the assertion names;
        ``WebAuthnFailed`` otherwise (another user's key is not named: unknown here)."""
        taken = writes.take_challenge(attempt.challenge_key, purpose="authenticate",
                                      now=attempt.now)
        if taken is None:
            raise WebAuthnFailed("challenge_mismatch", "no live challenge for this session")
        username = attempt.session.username
        row = writes.webauthn_credential(self._webauthn.credential_key(attempt.credential_json))
        if row is None or row.kind != "webauthn" or row.username != username or (
                taken.username != username):
            raise WebAuthnFailed("unknown_credential", "credential not registered")
        return row, unb64url(taken.challenge)

    def _proved(self, writes: StepWrites, attempt: KeyAttempt, row: CredentialRow,
                challenge: bytes) -> KeyProof:
        """The assertion verified against ``row`` and its new sign count stored;
        ``WebAuthnFailed`` otherwise."""
        proof = self._webauthn.check_assertion(
            row=row, challenge=challenge, credential_json=attempt.credential_json,
            require_uv=attempt.require_uv, passkey=False)
        if not writes.accept_sign_count(row.id, new=proof.new_sign_count, now=attempt.now):
            raise WebAuthnFailed("sign_count_regressed", "not above the stored count")
        return proof
