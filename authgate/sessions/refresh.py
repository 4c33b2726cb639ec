"""Session freshness: an existing session re-reads the account from the directory every
``refresh_interval`` (policy, default 5 minutes), so a user disabled or locked in Active
Directory, or removed from a group, loses that access within the interval (issue: AD).

A password changed or reset since the sign-in (AD ``pwdLastSet`` moved, including an admin's
"must change at next logon"; the users file's changed-at time) ends the session: a thief who
had the old password, or the session, loses it at the next re-read (issue 14 finding 4,
ASVS 3.3.3).

Fail closed: when the refresh is due and no directory answers, the session is refused until
one does (it is not ended: service resumes when a DC comes back).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import timedelta

from authgate.audit import AuditLog
from authgate.core.clock import Clock
from authgate.core.errors import DirectoryUnavailable
from authgate.core.values import AuditEvent, Identity, Outcome, SessionRecord
from authgate.directory import AccountStatusSource, Directory
from authgate.sessions.service import PASSWORD_STAMP
from authgate.storage.interfaces import SessionStore


def _password_moved(session: SessionRecord, identity: Identity) -> bool:
    """The directory's password-set stamp differs from the one seen at sign-in. A session
    that recorded none (started before stamps were kept) is judged by its groups alone."""
    seen = session.data.get(PASSWORD_STAMP)
    return seen is not None and seen != identity.password_set_at


class AccountRefresher:
    def __init__(self, *, directory: Directory, status: AccountStatusSource | None,
                 store: SessionStore, audit: AuditLog, clock: Clock,
                 interval: Callable[[], timedelta]) -> None:
        """``status`` is the directory in that role (precise states: a locked account
        loses its session), or None: then an account is usable while it can be looked up."""
        self._directory = directory
        self._status = status
        self._store = store
        self._audit = audit
        self._clock = clock
        self._interval = interval

    def refresh(self, session: SessionRecord) -> SessionRecord | None:
        """The session, re-read if due; None when it may not be used (now or any more)."""
        now = self._clock.now()
        if session.refreshed_at is not None and now - session.refreshed_at < self._interval():
            return session
        try:
            identity, state = self._read(session.username)
        except DirectoryUnavailable as exc:
            self._record(session, Outcome.ERROR, exc.reason, "session.refresh")
            return None
        if identity is None or _password_moved(session, identity):
            self._store.delete(session.id_hash)
            self._record(session, Outcome.DENY,
                         state if identity is None else "password_changed", "session.revoked")
            return None
        refreshed = dataclasses.replace(
            session, groups=identity.groups, display_name=identity.display_name,
            email=identity.email, refreshed_at=now)
        self._store.update(refreshed)
        if identity.groups != session.groups:
            self._record(session, Outcome.INFO, "groups_changed", "session.refresh",
                         added=",".join(sorted(identity.groups - session.groups)),
                         removed=",".join(sorted(session.groups - identity.groups)))
        return refreshed

    def _read(self, username: str) -> tuple[Identity | None, str]:
        if self._status is None:
            identity = self._directory.lookup(username)
            return identity, "active" if identity else "account_unavailable"
        status = self._status.account_status(username)
        if status is None:
            return None, "account_deleted"
        if not status.state.may_keep_session:
            return None, str(status.state.value)
        return status.identity, str(status.state.value)

    def _record(self, session: SessionRecord, outcome: Outcome, reason: str, event: str,
                **detail: str) -> None:
        self._audit.record(AuditEvent(event=event, outcome=outcome, reason=reason,
                                      username=session.username,
                                      detail=tuple(sorted(detail.items()))))
