"""Ending sessions at the user's request: logout, one of my sessions, all my others.

Each ending is a decision and gets its audit record here, in one place, so the views only
parse the request and respond (ASVS 3.3.1 logout, 3.3.4 see and end other sessions).
"""
from __future__ import annotations

from authgate.audit import AuditLog
from authgate.core.values import AuditEvent, Outcome, RequestMeta, SessionRecord
from authgate.sessions.service import SessionService


class SessionEnding:
    def __init__(self, *, sessions: SessionService, audit: AuditLog) -> None:
        self._sessions = sessions
        self._audit = audit

    def logout(self, session: SessionRecord, *, meta: RequestMeta) -> None:
        """End this session (its record is deleted: the cookie is worthless from now on)."""
        self._sessions.end(session)
        self._audit.record(AuditEvent.for_request(
            meta, "logout", Outcome.SUCCESS, "user_logout", username=session.username))

    def end_one(self, session: SessionRecord, *, id_hash: str, meta: RequestMeta) -> bool:
        """End one of the signed-in user's own sessions; another user's id does nothing."""
        mine = {s.id_hash: s for s in self._sessions.sessions_of(session.username)}
        if id_hash not in mine:
            return False
        self._sessions.end(mine[id_hash])
        self._audit_ended(session, count=1, which="one", meta=meta)
        return True

    def end_others(self, session: SessionRecord, *, meta: RequestMeta) -> int:
        """End every session of this user but the one asking."""
        ended = self._sessions.end_others(session.username, keep_id_hash=session.id_hash)
        self._audit_ended(session, count=ended, which="others", meta=meta)
        return ended

    def _audit_ended(self, session: SessionRecord, *, count: int, which: str,
                     meta: RequestMeta) -> None:
        self._audit.record(AuditEvent.for_request(
            meta, "session.ended_by_user", Outcome.SUCCESS, which,
            username=session.username, count=str(count)))
