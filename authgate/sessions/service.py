"""Server-side sessions: opaque random tokens, idle and absolute expiry, id rotation.

The cookie carries a 256-bit random token (``secrets``); storage keeps only its SHA-256, so a
database leak yields no usable cookie (NIST SP 800-63B 7.1, ASVS 3.2.2). Every level change
issues a new token (ASVS 3.2.1); logout deletes the record (ASVS 3.3.1).
"""
from __future__ import annotations

import dataclasses
import hashlib
import itertools
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from authgate.core.clock import Clock
from authgate.core.values import Identity, Level, SessionRecord
from authgate.storage.interfaces import SessionStore

TOKEN_BYTES = 32
_MAX_TOKEN_LENGTH = 64
#: expired sessions are deleted once every this many new sessions (ASVS 3.3.1: abandoned
#: sessions must not pile up), as regulation purges its counters every N records
PURGE_EVERY = 200


#: the session data key holding the directory's password-set stamp seen at sign-in
#: (``Identity.password_set_at``): when the directory reports another, the password was
#: changed or reset since, and the session ends (``sessions.refresh``)
PASSWORD_STAMP = "pwd_set"  # noqa: S105 - a data key, not a password


class Refresher(Protocol):
    def refresh(self, session: SessionRecord) -> SessionRecord | None: ...


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


@dataclass(frozen=True)
class Issued:
    """A new session: the token goes into the cookie, the record into storage."""

    token: str
    record: SessionRecord


class SessionService:
    def __init__(self, store: SessionStore, clock: Clock, *, idle_timeout: timedelta,
                 max_age: timedelta, touch_interval: timedelta,
                 refresher: Refresher | None = None, purge_every: int = PURGE_EVERY) -> None:
        self.store = store
        self._clock = clock
        self.idle_timeout = idle_timeout
        self.max_age = max_age
        self._touch_interval = touch_interval
        #: re-reads the account from the directory when due (``sessions.refresh``)
        self.refresher = refresher
        self._purge_every = purge_every
        self._started = itertools.count(1)  # next() is atomic: safe across threads

    def start(self, identity: Identity, *, level: Level, client_ip: str,
              user_agent: str) -> Issued:
        issued = self.started(identity, level=level, client_ip=client_ip,
                              user_agent=user_agent)
        self.store.add(issued.record)
        self.purge_now_and_then()
        return issued

    def started(self, identity: Identity, *, level: Level, client_ip: str,
                user_agent: str) -> Issued:
        """A new session for ``identity`` under a new token, not stored yet: a passkey
        sign-in stores it in its own transaction (``StepWrites.add_session``), then calls
        ``purge_now_and_then`` as ``start`` does."""
        now = self._clock.now()
        record = SessionRecord(
            id_hash="", username=identity.username, groups=identity.groups, level=level,
            created_at=now, auth_time=now, last_seen=now, expires_at=now + self.max_age,
            client_ip=client_ip, user_agent=user_agent[:512],
            display_name=identity.display_name, email=identity.email,
            stable_id=identity.stable_id, source=identity.source, refreshed_at=now,
            data={PASSWORD_STAMP: identity.password_set_at},
        )
        return _with_new_token(record)

    def purge_now_and_then(self) -> None:
        """Once every ``purge_every`` sessions started, delete the expired ones."""
        if next(self._started) % self._purge_every == 0:
            self.store.purge_expired(self._clock.now())

    def resolve(self, token: str | None) -> SessionRecord | None:
        """The live session for a cookie value, or None (expired, idle, unknown, malformed).

        Touches last-seen at most once per ``touch_interval`` to save a write per request.
        The record returned keeps the *previous* last-seen, which per-rule idle limits need.
        """
        if not token or len(token) > _MAX_TOKEN_LENGTH or not token.isascii():
            return None
        record = self.store.get(hash_token(token))
        if record is None:
            return None
        now = self._clock.now()
        if now >= record.expires_at or now - record.last_seen >= self.idle_timeout:
            self.store.delete(record.id_hash)
            return None
        if self.refresher is not None:
            refreshed = self.refresher.refresh(record)
            if refreshed is None:
                return None
            record = refreshed
        if now - record.last_seen >= self._touch_interval:
            self.store.touch(record.id_hash, now)
        return record

    def elevate(self, record: SessionRecord, *, level: Level) -> Issued | None:
        """Record a newly proven level under a new token; None if the session is gone."""
        issued = self.elevated(record, level=level)
        return issued if self.store.replace(record.id_hash, issued.record) else None

    def elevated(self, record: SessionRecord, *, level: Level) -> Issued:
        """``record`` at a newly proven level under a new token (ASVS 3.2.1), not stored
        yet: a login step stores it in its own transaction (``StepWrites.replace_session``).
        Never a lower level than the session holds."""
        keep = level if level.rank > record.level.rank else record.level
        now = self._clock.now()
        return _with_new_token(dataclasses.replace(record, level=keep, auth_time=now,
                                                   last_seen=now))

    def annotate(self, record: SessionRecord, **values: str) -> SessionRecord:
        """Store small per-session state (e.g. an enrolment window); returns the new record."""
        updated = dataclasses.replace(record, data={**record.data, **values})
        self.store.update(updated)
        return updated

    def end(self, record: SessionRecord) -> bool:
        return self.store.delete(record.id_hash)

    def end_all_for(self, username: str) -> int:
        return self.store.delete_for_user(username)

    def end_others(self, username: str, *, keep_id_hash: str | None) -> int:
        """End every session of ``username`` except ``keep_id_hash`` (None: all of them);
        returns how many ended. "Sign out my other devices" (ASVS 3.3.4)."""
        return self.store.delete_except(username, keep_id_hash=keep_id_hash)

    def end_everyone(self) -> int:
        """End every session of every user: the suspected-compromise switch."""
        return self.store.delete_all()

    def sessions_of(self, username: str) -> list[SessionRecord]:
        """The user's sessions, most recently seen first."""
        return self.store.list_for_user(username)

    def ping(self) -> None:
        """Raise StorageError when session storage is unusable (health checks)."""
        self.store.ping()


def _with_new_token(record: SessionRecord) -> Issued:
    token = secrets.token_urlsafe(TOKEN_BYTES)
    return Issued(token, dataclasses.replace(record, id_hash=hash_token(token)))
