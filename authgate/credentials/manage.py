"""Listing, renaming and removing factors; an admin reset of all of a user's factors.

Removing a factor or resetting them ends every session of that user at once (ASVS 2.8.6),
and every change is audited with who did it and why (ASVS 2.5.7, 2.2.3).
"""
from __future__ import annotations

from dataclasses import dataclass

from authgate.core.values import Outcome, RequestMeta
from authgate.credentials.factor_audit import FactorAudit
from authgate.sessions.service import SessionService
from authgate.storage.interfaces import CredentialStore, RecoveryCodeStore
from authgate.storage.rows import CredentialRow


@dataclass(frozen=True)
class FactorSummary:
    credentials: tuple[CredentialRow, ...]
    recovery_codes_left: int

    @property
    def active(self) -> tuple[CredentialRow, ...]:
        return tuple(c for c in self.credentials if c.active)

    @property
    def has_webauthn(self) -> bool:
        return any(c.kind == "webauthn" for c in self.active)

    @property
    def has_totp(self) -> bool:
        return any(c.kind == "totp" for c in self.active)


class FactorManager:
    def __init__(self, *, store: CredentialStore, codes: RecoveryCodeStore,
                 sessions: SessionService, record: FactorAudit) -> None:
        self._store = store
        self._codes = codes
        self._sessions = sessions
        self._record = record

    def summary(self, username: str) -> FactorSummary:
        return FactorSummary(tuple(self._store.list_for(username)),
                             len(self._codes.unused(username)))

    def has_factors(self, username: str) -> bool:
        return bool(self._store.list_for(username, active_only=True))

    def rename(self, *, username: str, credential_id: str, name: str, meta: RequestMeta) -> bool:
        ok = self._store.rename(credential_id, username, name.strip()[:64] or "Unnamed")
        self._record("factor.renamed", Outcome.SUCCESS if ok else Outcome.FAILURE,
                     "renamed" if ok else "unknown_credential", username=username, meta=meta,
                     credential=credential_id)
        return ok

    def remove(self, *, username: str, credential_id: str, by: str, reason: str,
               meta: RequestMeta) -> bool:
        ok = self._store.delete(credential_id, username)
        ended = self._sessions.end_all_for(username) if ok else 0
        self._record("factor.removed", Outcome.SUCCESS if ok else Outcome.FAILURE,
                     "removed" if ok else "unknown_credential", username=username, meta=meta,
                     credential=credential_id, actor=by, why=reason, sessions_ended=str(ended))
        return ok

    def reset_all(self, *, username: str, by: str, reason: str, meta: RequestMeta) -> int:
        """Remove every factor and recovery code (re-proofing, ASVS 2.5.7); end sessions."""
        removed = self._store.delete_all(username)
        self._codes.delete_for(username)
        ended = self._sessions.end_all_for(username)
        self._record("admin.factors_reset", Outcome.SUCCESS, "reset", username=username,
                     meta=meta, actor=by, why=reason, removed=str(removed),
                     sessions_ended=str(ended))
        return removed
