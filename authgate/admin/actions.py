"""What an admin may do, each an audit event naming the admin, the target and the reason
(ASVS 2.5.7 re-proofing, 2.8.6 revocation at once, 4.3.3 separation of duties: nothing here
touches the audit trail)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from authgate.admin.bans import lift_ban
from authgate.admin.reasons import MIN_REASON, ReasonRequired, need_reason
from authgate.audit import AuditLog
from authgate.core.values import AuditEvent, Outcome, RequestMeta
from authgate.credentials.enrolment import IssuedCode
from authgate.credentials.second_factors import SecondFactors
from authgate.regulation import BanRegistry
from authgate.sessions.service import SessionService

__all__ = ["MIN_REASON", "AdminActions", "ReasonRequired"]


@dataclass
class AdminActions:
    """Built once by the composition root (``Services.admin``); views only call it."""

    audit: AuditLog
    sessions: SessionService
    mfa: SecondFactors
    regulator: BanRegistry

    def _record(self, event: str, *, admin: str, target: str, reason: str, why: str,
                meta: RequestMeta, outcome: Outcome = Outcome.SUCCESS, **detail: str) -> None:
        self.audit.record(AuditEvent(
            event=event, outcome=outcome, reason=reason, username=target,
            **meta.asked(),
            detail=tuple(sorted({"actor": admin, "why": why, **detail}.items()))))

    _need_reason = staticmethod(need_reason)

    def issue_code(self, *, admin: str, username: str, ttl: timedelta, reason: str,
                   meta: RequestMeta) -> IssuedCode:
        return self.mfa.enrolment.issue(username=username, issued_by=admin, ttl=ttl, meta=meta,
                                        reason=self._need_reason(reason))

    def revoke_code(self, *, admin: str, username: str, code_id: str, reason: str,
                    meta: RequestMeta) -> bool:
        return self.mfa.enrolment.revoke(code_id=code_id, username=username, by=admin,
                                         meta=meta, reason=self._need_reason(reason))

    def remove_factor(self, *, admin: str, username: str, credential_id: str, reason: str,
                      meta: RequestMeta) -> bool:
        return self.mfa.factors.remove(username=username, credential_id=credential_id,
                                       by=admin, reason=self._need_reason(reason), meta=meta)

    def reset_factors(self, *, admin: str, username: str, reason: str,
                      meta: RequestMeta) -> int:
        return self.mfa.factors.reset_all(username=username, by=admin,
                                          reason=self._need_reason(reason), meta=meta)

    def end_sessions(self, *, admin: str, username: str, reason: str, meta: RequestMeta) -> int:
        why = self._need_reason(reason)
        ended = self.sessions.end_all_for(username)
        self._record("admin.sessions_ended", admin=admin, target=username,
                     reason="admin_request", why=why, meta=meta, count=str(ended))
        return ended

    def end_all_sessions(self, *, admin: str, reason: str, meta: RequestMeta) -> int:
        """The "suspected compromise" button: every session of every user ends now."""
        why = self._need_reason(reason)
        ended = self.sessions.end_everyone()
        self._record("admin.all_sessions_ended", admin=admin, target="*",
                     reason="suspected_compromise", why=why, meta=meta, count=str(ended),
                     severity="high")
        return ended

    def lift_ban(self, *, admin: str, target: str, reason: str, meta: RequestMeta) -> list[str]:
        return lift_ban(registry=self.regulator, operator=admin, target=target, reason=reason,
                        meta=meta)
