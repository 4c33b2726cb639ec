"""TOTP enrolment and checks (RFC 6238), seeds encrypted at rest (ASVS 2.8.2).

Replay: each accepted time step is stored per credential by a conditional UPDATE, so a code
is accepted once, even by two simultaneous requests (ASVS 2.8.4, NIST 63B 5.1.4.2).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from authgate.core.secretbox import Keyring, SecretBoxError
from authgate.core.values import Outcome, RequestMeta
from authgate.credentials.factor_audit import FactorAudit, new_id
from authgate.credentials.params import FactorParams
from authgate.factors import VerifiedTotp, new_totp_secret, provisioning_uri, verify_totp
from authgate.factors.errors import CodeReplayed, FactorError, InvalidCode, InvalidSecret
from authgate.storage.interfaces import CredentialStore
from authgate.storage.rows import CredentialRow


@dataclass(frozen=True)
class PendingTotp:
    credential_id: str
    secret: str  # shown once, to be typed or scanned; never stored in plain text
    uri: str


#: how long a set-up's pending secret may still be confirmed: long enough to retry a wrong
#: code in place (issue 17 item 4), short enough that an abandoned secret soon stops counting
PENDING_LIFETIME = timedelta(minutes=15)


def totp_aad(cred_id: str, username: str) -> bytes:
    return f"totp:{cred_id}:{username}".encode()


class TotpService:
    def __init__(self, *, store: CredentialStore, keyring: Keyring,
                 params: Callable[[], FactorParams], record: FactorAudit) -> None:
        """``params`` is re-read per use, so an approved policy reload applies at once."""
        self._store = store
        self._keyring = keyring
        self._params = params
        self._record = record

    def start(self, *, username: str, name: str, meta: RequestMeta) -> PendingTotp:
        """A new, inactive credential; it works only after ``confirm`` with a valid code."""
        secret = new_totp_secret()
        cred_id = new_id()
        self._store.add(CredentialRow(
            id=cred_id, username=username, kind="totp", name=name[:64] or "Authenticator app",
            active=False, created_at=self._record.clock.now(), last_used_at=None,
            secret=self._keyring.encrypt(secret.encode(), associated_data=totp_aad(cred_id,
                                                                               username))))
        self._record("enrol.totp.start", Outcome.INFO, "pending", username=username,
                     meta=meta, credential=cred_id)
        return self._pending(cred_id, username, secret)

    def _pending(self, cred_id: str, username: str, secret: str) -> PendingTotp:
        p = self._params()
        uri = provisioning_uri(secret=secret, account_name=username, issuer=p.issuer,
                               digits=p.totp_digits, period=p.totp_period,
                               algorithm=p.totp_algorithm)
        return PendingTotp(cred_id, secret, uri)

    def pending(self, *, username: str, credential_id: str) -> PendingTotp | None:
        """The same set-up again after a wrong code, so the entry already on the phone still
        works: the user's own inactive credential within ``PENDING_LIFETIME``, else None."""
        row = self._live_pending(username, credential_id)
        if row is None:
            return None
        try:
            secret = self._keyring.decrypt(row.secret or "",
                                           associated_data=totp_aad(row.id, username)).decode()
        except SecretBoxError:
            return None
        return self._pending(row.id, username, secret)

    def _live_pending(self, username: str, credential_id: str) -> CredentialRow | None:
        row = self._store.get(credential_id) if credential_id else None
        if row is None or row.username != username or row.kind != "totp" or row.active:
            return None
        if self._record.clock.now() - row.created_at > PENDING_LIFETIME:
            return None
        return row

    def confirm(self, *, username: str, credential_id: str, code: str,
                meta: RequestMeta) -> CredentialRow:
        row = self._live_pending(username, credential_id)
        if row is None:
            stale = self._store.get(credential_id) if credential_id else None
            reason = "setup_expired" if stale is not None and stale.username == username \
                and not stale.active else "unknown_credential"
            self._record("enrol.totp.confirm", Outcome.FAILURE, reason,
                         username=username, meta=meta)
            raise InvalidCode(reason)
        try:
            self._check(row, code, activate=True)
        except FactorError as exc:
            self._record("enrol.totp.confirm", Outcome.FAILURE, exc.reason, username=username,
                         meta=meta, credential=row.id)
            raise
        self._record("factor.added", Outcome.SUCCESS, "totp", username=username, meta=meta,
                     credential=row.id, name=row.name)
        return row

    def verify(self, *, username: str, code: str, meta: RequestMeta) -> CredentialRow:
        """Check ``code`` against the user's active TOTP credentials; audit the outcome."""
        rows = [r for r in self._store.list_for(username, active_only=True) if r.kind == "totp"]
        error: FactorError = InvalidCode("no_totp_credential")
        for row in rows:
            try:
                self._check(row, code)
            except CodeReplayed as exc:
                error = exc  # a right code seen before: someone else may have it
                break
            except FactorError as exc:
                error = exc
            else:
                self._record("login.totp", Outcome.SUCCESS, "totp_ok", username=username,
                             meta=meta, credential=row.id)
                return row
        self._record("login.totp", Outcome.FAILURE, error.reason, username=username,
                     meta=meta)
        raise error

    def _check(self, row: CredentialRow, code: str, *, activate: bool = False) -> None:
        now = self._record.clock.now()
        verified = self.check_code(row, code, now=now)
        if not self._store.accept_step(row.id, verified.time_step, now, activate=activate):
            raise CodeReplayed()  # a concurrent request spent this step first

    def check_code(self, row: CredentialRow, code: str, *, now: datetime) -> VerifiedTotp:
        """Decrypt the seed and check ``code`` against ``row`` (its ``last_step`` included);
        raises ``FactorError``. Stores nothing: the caller records the accepted step."""
        p = self._params()
        try:
            secret = self._keyring.decrypt(row.secret or "",
                                           associated_data=totp_aad(row.id, row.username)).decode()
        except SecretBoxError as exc:  # a swapped, tampered or unknown-key row: deny
            raise InvalidSecret(detail=exc.reason) from exc
        return verify_totp(secret=secret, code=code, now=now,
                           last_accepted_step=row.last_step, digits=p.totp_digits,
                           period=p.totp_period, algorithm=p.totp_algorithm,
                           valid_window=p.totp_valid_window)
