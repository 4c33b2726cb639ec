"""Passkey sign-in: a discoverable WebAuthn credential with user verification, without a
username or password (W3C WebAuthn §5.1.4, an empty allowCredentials list).

The passkey proves possession and user verification (PIN or biometric), so the session
starts at ``phishing_resistant``. The account must still be enabled in the directory and the
per-user second-factor throttle applies, as for every other factor. The challenge is bound to
a random browser handle the caller keeps (the library keeps no state).

Its writes commit as one transaction (issue 20 item 1, ``storage.step_interfaces``): first,
outside any transaction, the live challenge and the credential are read, the assertion is
verified (pure) and the directory asked (it may be LDAP: never hold the database's write
lock across a network call); then one transaction admits the throttle (on PostgreSQL it
locks the user's row first, as the security-key step does), takes the challenge (a DELETE:
of two requests with one assertion exactly one gets it, ASVS 2.9.2), stores the new sign
count only if it is above the one stored now (WebAuthn §6.1.1: judged at commit, not
against the count read before, pen test F2b), clears the throttle, starts the session and
stores the sealed audit record. A failure before its COMMIT leaves none of it. A refusal
commits the taken challenge (single use, verified or not) and its one record; a genuine
passkey refused (account gone, below the policy, throttled) also its new sign count, and,
when admitted, its reservation, counted as a failure and settled after the COMMIT (one
refused by what changed meanwhile gives its reservation back). An assertion that does
not verify is not counted against the key's owner, as before: it needs no password, so
counting it would let anyone lock the owner out.
"""
from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol

from authgate.audit import AuditLog
from authgate.audit.log import AuditSlot
from authgate.core.clock import Clock
from authgate.core.errors import AuthgateError, DirectoryError
from authgate.core.metrics import RATE_LIMITED
from authgate.core.values import AuditEvent, Identity, Level, Outcome, RequestMeta
from authgate.credentials.webauthn import KeyProof, unb64url
from authgate.directory import Directory
from authgate.factors.errors import FactorError, WebAuthnFailed
from authgate.regulation import Admission, FactorOutcome, Regulator
from authgate.regulation.rate import RateLimiter
from authgate.sessions.service import Issued, SessionService, hash_token
from authgate.storage.rows import ChallengeRow, CredentialRow
from authgate.storage.step_interfaces import LoginStepUnit, StepWrites

EVENT = "login.passkey"
#: an assertion that failed its checks is recorded as the security-key step records one
ASSERTION_EVENT = "login.webauthn"


class PasskeyRefused(FactorError):
    """The passkey did not start a session; the precise reason is already audited."""

    reason = "passkey_refused"


class PasskeyRateLimited(AuthgateError):
    """Too many passkey requests from this address (``regulation.rate``): answered 429
    before any work, nothing written. ``retry_after``: seconds until the next one goes."""

    reason = "rate_limited"

    def __init__(self, retry_after: float) -> None:
        super().__init__("too many passkey requests from this address")
        self.retry_after = retry_after


class PasskeyCeremony(Protocol):
    """The WebAuthn authentication ceremony (``credentials.webauthn.WebAuthnService``)."""

    def begin_authentication(self, *, key: str, username: str | None,
                             require_uv: bool) -> str: ...

    def read_passkey(self, *, key: str, credential_json: str, now: datetime
                     ) -> tuple[ChallengeRow, CredentialRow]: ...

    def check_assertion(self, *, row: CredentialRow, challenge: bytes, credential_json: str,
                        require_uv: bool, passkey: bool) -> KeyProof: ...


def challenge_key(handle: str) -> str:
    """The stored challenge's key: a hash, so the browser handle itself is never stored."""
    return hashlib.sha256(f"passkey:{handle}".encode()).hexdigest()


@dataclass(frozen=True)
class PasskeyAttempt:
    """A verified assertion and who it names, ready for its one transaction."""

    key: str
    challenge: ChallengeRow
    row: CredentialRow
    proof: KeyProof
    identity: Identity | None
    meta: RequestMeta
    now: datetime
    replacing: str = ""  # the id hash of the session the browser had, ended with it


@dataclass(frozen=True)
class _Committed:
    """What the transaction stored: its record's id, and what to do once it has ended."""

    audit_id: int
    error: AuthgateError | None = None  # a refusal, to raise
    admission: Admission | None = None  # admitted and refused: settled as a failure
    issued: Issued | None = None


class PasskeyLogin:
    def __init__(self, *, webauthn: PasskeyCeremony, directory: Directory,
                 regulator: Regulator, sessions: SessionService, audit: AuditLog,
                 unit: LoginStepUnit, clock: Clock, limiter: RateLimiter) -> None:
        self._webauthn = webauthn
        self._limiter = limiter
        self._directory = directory
        self._regulator = regulator
        self._sessions = sessions
        self._audit = audit
        self._unit = unit
        self._clock = clock

    def options(self, *, handle: str, client_ip: str) -> str:
        """``navigator.credentials.get`` options for a challenge bound to ``handle``, or
        ``PasskeyRateLimited`` (nothing stored) when ``client_ip`` asks too often."""
        self._admit(client_ip, "passkey_options")
        return self._webauthn.begin_authentication(key=challenge_key(handle), username=None,
                                                   require_uv=True)

    def sign_in(self, *, handle: str, credential_json: str, meta: RequestMeta,
                replacing: str | None = None) -> Issued:
        """A new session at ``phishing_resistant``, or ``PasskeyRefused``,
        ``WebAuthnFailed`` (the assertion), ``DirectoryError`` or ``StorageError``; every
        outcome audited once. ``replacing``: the session token the browser carries (anyone's,
        at any level); that session ends in the new one's transaction (ASVS 3.2.1, 3.3.1),
        and stays if the sign-in is refused. ``PasskeyRateLimited`` (nothing read, nothing
        written) when the address asks too often."""
        self._admit(meta.client_ip, "passkey_verify")
        attempt = replace(self._verified(challenge_key(handle), credential_json, meta),
                          replacing=hash_token(replacing) if replacing else "")
        done = self._committed(lambda writes, slot: self._writes(writes, attempt, slot))
        if done.issued is not None:
            self._sessions.purge_now_and_then()
            return done.issued
        if done.admission is not None:  # its reservation counts already: a ban if due
            self._regulator.record_factor(admission=done.admission,
                                          outcome=FactorOutcome.FAILURE,
                                          meta=meta)
        raise done.error or PasskeyRefused()

    def _admit(self, client_ip: str, endpoint: str) -> None:
        wait = self._limiter.take(client_ip)
        if wait > 0:
            RATE_LIMITED.labels(endpoint).inc()
            raise PasskeyRateLimited(wait)

    def _verified(self, key: str, credential_json: str, meta: RequestMeta) -> PasskeyAttempt:
        """Outside any transaction: the reads, the assertion's check and the directory. A
        refusal here is committed (challenge taken, record stored) and raised."""
        now, row = self._clock.now(), None
        try:
            challenge, row = self._webauthn.read_passkey(key=key,
                                                         credential_json=credential_json,
                                                         now=now)
            proof = self._webauthn.check_assertion(
                row=row, challenge=unb64url(challenge.challenge),
                credential_json=credential_json, require_uv=True, passkey=True)
        except WebAuthnFailed as exc:
            lost = self._refused_early(key, now, AuditEvent.for_request(
                meta, ASSERTION_EVENT, Outcome.FAILURE, exc.reason, **named(row)),
                racy=True)
            if lost:
                raise lost from exc
            raise
        try:
            identity = self._directory.lookup(row.username)
        except DirectoryError as exc:
            self._refused_early(key, now, AuditEvent.for_request(
                meta, EVENT, Outcome.ERROR, exc.reason, **named(row)))
            raise
        return PasskeyAttempt(key, challenge, row, proof, identity, meta, now)

    def _refused_early(self, key: str, now: datetime, record: AuditEvent, *,
                       racy: bool = False) -> AuthgateError | None:
        """One transaction: the challenge taken (single use, whatever went wrong) and the
        refusal's record. ``racy``: the refusal rests on reads made without a lock; if the
        take finds nothing, another request with this challenge got there first (a copy of
        the assertion that won may have made the count read look stale: no clone alarm),
        so it is recorded and returned as ``challenge_mismatch`` instead (pen test F2a)."""
        def spend(writes: StepWrites, slot: AuditSlot) -> _Committed:
            taken = writes.take_challenge(key, purpose="authenticate", now=now)
            if taken is None and racy:
                lost = replace(record, reason="challenge_mismatch")
                return _Committed(writes.append_audit(slot.seal(lost)), WebAuthnFailed(
                    "challenge_mismatch", "another request took the challenge first"))
            return _Committed(writes.append_audit(slot.seal(record)))

        return self._committed(spend).error

    def _committed(self, work: Callable[[StepWrites, AuditSlot], _Committed]) -> _Committed:
        with self._audit.within() as slot:  # the audit lane first, then the transaction
            done = self._unit.run(lambda writes: work(writes, slot))
            slot.stored(done.audit_id)
        return done

    def _writes(self, writes: StepWrites, attempt: PasskeyAttempt,
                slot: AuditSlot) -> _Committed:
        """The transaction: throttle, challenge, sign count, session, one record. The
        throttle first: on PostgreSQL it locks the user's row before the key's row is
        updated, in the security-key step's order (the other order deadlocked with it)."""
        meta, key = attempt.meta, named(attempt.row)  # a key removed meanwhile too
        admission = self._regulator.reserve_factor(writes, username=attempt.row.username)
        raced = self._spent(writes, attempt)
        if raced:  # not counted: given back in this transaction
            if admission.allowed:
                self._regulator.factor_given_back(writes, admission=admission)
            record = AuditEvent.for_request(meta, ASSERTION_EVENT, Outcome.FAILURE, raced,
                                            **key)
            return _Committed(writes.append_audit(slot.seal(record)), WebAuthnFailed(raced))
        refusal, cause = _refusal(attempt, admission)
        identity = attempt.identity
        if refusal or identity is None:
            record = AuditEvent.for_request(meta, EVENT, Outcome.FAILURE, refusal, **key,
                                            **cause)
            return _Committed(writes.append_audit(slot.seal(record)), PasskeyRefused(refusal),
                              admission if admission.allowed else None)
        issued = self._sessions.started(identity, level=Level.PHISHING_RESISTANT,
                                        client_ip=meta.client_ip, user_agent=meta.user_agent)
        if attempt.replacing:
            writes.end_session(attempt.replacing)  # gone already: nothing to end
        writes.add_session(issued.record)
        self._regulator.factor_succeeded(writes, admission=admission)
        record = AuditEvent.for_request(meta, EVENT, Outcome.SUCCESS, "passkey_uv",
                                        username=identity.username, credential=attempt.row.id)
        return _Committed(writes.append_audit(slot.seal(record)), issued=issued)

    @staticmethod
    def _spent(writes: StepWrites, attempt: PasskeyAttempt) -> str:
        """The challenge taken, the key still the one verified, its new sign count stored:
        "" then, or the reason a concurrent request won (the challenge is taken anyway)."""
        taken = writes.take_challenge(attempt.key, purpose="authenticate", now=attempt.now)
        if taken is None or taken.username or not hmac.compare_digest(
                taken.challenge, attempt.challenge.challenge):
            return "challenge_mismatch"  # another request with this assertion took it first
        row = attempt.row
        current = writes.webauthn_credential(row.credential_id or "")
        if current is None or current.id != row.id or current.public_key != row.public_key:
            return "unknown_credential"  # removed while the assertion was checked
        if not writes.accept_sign_count(row.id, new=attempt.proof.new_sign_count,
                                        now=attempt.now):
            return "sign_count_regressed"  # not above what is stored now (§6.1.1)
        return ""


def named(row: CredentialRow | None) -> dict[str, str]:
    """What a record says of the key (pen test F3): its owner and row id, as the success
    record does, once the key is known (read before the transaction, so a key removed
    meanwhile is still named). Never the challenge, the user handle or the assertion."""
    return {} if row is None else {"username": row.username, "credential": row.id}


def _refusal(attempt: PasskeyAttempt, admission: Admission) -> tuple[str, dict[str, str]]:
    """Why a genuine passkey starts no session ("" when it does), and the precise cause."""
    if attempt.identity is None:
        return "account_unavailable", {}
    if not admission.allowed:
        return "refused", {"cause": admission.reason or "factor_throttled"}
    if not attempt.proof.strong:
        return "refused", {"cause": attempt.proof.reason}
    return "", {}
