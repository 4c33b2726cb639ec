"""Passkey sign-in: a discoverable WebAuthn credential with user verification, without a
username or password (W3C WebAuthn §5.1.4, an empty allowCredentials list).

The passkey proves possession and user verification (PIN or biometric), so the session
starts at ``phishing_resistant``. The account must still be enabled in the directory and the
per-user second-factor throttle applies, as for every other factor. The challenge is bound to
a random browser handle the caller keeps (the library keeps no state).
"""
from __future__ import annotations

import hashlib
from typing import NoReturn, Protocol

from authgate.audit import AuditLog
from authgate.core.values import AuditEvent, Level, Outcome, RequestMeta
from authgate.directory import Directory
from authgate.factors.errors import FactorError
from authgate.regulation import FactorOutcome, Regulator
from authgate.sessions.service import Issued, SessionService
from authgate.storage.rows import CredentialRow


class PasskeyRefused(FactorError):
    """The passkey did not start a session; the precise reason is already audited."""

    reason = "passkey_refused"


class PasskeyCeremony(Protocol):
    """The WebAuthn authentication ceremony (``credentials.webauthn.WebAuthnService``)."""

    def begin_authentication(self, *, key: str, username: str | None,
                             require_uv: bool) -> str: ...

    def finish_authentication(self, *, key: str, credential_json: str, require_uv: bool,
                              meta: RequestMeta) -> tuple[CredentialRow, bool]: ...


def challenge_key(handle: str) -> str:
    """The stored challenge's key: a hash, so the browser handle itself is never stored."""
    return hashlib.sha256(f"passkey:{handle}".encode()).hexdigest()


class PasskeyLogin:
    def __init__(self, *, webauthn: PasskeyCeremony, directory: Directory,
                 regulator: Regulator, sessions: SessionService, audit: AuditLog) -> None:
        self._webauthn = webauthn
        self._directory = directory
        self._regulator = regulator
        self._sessions = sessions
        self._audit = audit

    def options(self, *, handle: str) -> str:
        """``navigator.credentials.get`` options for a challenge bound to ``handle``."""
        return self._webauthn.begin_authentication(key=challenge_key(handle), username=None,
                                                   require_uv=True)

    def sign_in(self, *, handle: str, credential_json: str, meta: RequestMeta) -> Issued:
        """A new session at ``phishing_resistant``, or ``PasskeyRefused`` (or the ceremony's
        own ``FactorError``), every outcome audited."""
        row, verified = self._webauthn.finish_authentication(
            key=challenge_key(handle), credential_json=credential_json, require_uv=True,
            meta=meta)
        identity = self._directory.lookup(row.username)
        admitted = self._throttle_admits(row.username, proven=identity is not None and verified)
        if identity is None or not verified or not admitted:
            self._refuse(row.username, "account_unavailable" if identity is None else "refused",
                         meta)
        issued = self._sessions.start(identity, level=Level.PHISHING_RESISTANT,
                                      client_ip=meta.client_ip, user_agent=meta.user_agent)
        self._audit.record(AuditEvent.for_request(
            meta, "login.passkey", Outcome.SUCCESS, "passkey_uv", username=identity.username,
            credential=row.id))
        return issued

    def _throttle_admits(self, username: str, *, proven: bool) -> bool:
        """The per-user factor throttle, in one place. An admitted attempt is settled at
        once with its outcome (as a typed code is), or its reservation would count as a
        failure until it expires and lock out a user who signs in with a passkey often."""
        admission = self._regulator.admit_factor(username=username)
        if not admission.allowed:
            return False
        self._regulator.record_factor(
            admission=admission,
            outcome=FactorOutcome.SUCCESS if proven else FactorOutcome.FAILURE)
        return True

    def _refuse(self, username: str, reason: str, meta: RequestMeta) -> NoReturn:
        self._audit.record(AuditEvent.for_request(
            meta, "login.passkey", Outcome.FAILURE, reason, username=username))
        raise PasskeyRefused(reason)
