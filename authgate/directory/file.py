"""A YAML users file with argon2id hashes: the embedded default and the break-glass store.

File format::

    users:
      alice:
        display_name: Alice Example
        email: alice@city.test
        groups: [City-Staff, IT-Dept]
        password: $argon2id$v=19$...
        password_changed_at: '2026-01-05T12:00:00.123456+00:00'
        disabled: false

``password_changed_at`` is written with every password set: a session whose sign-in saw
another value ends at its next directory re-read (``sessions.refresh``, issue 14).

The file is re-read when its modification time changes, so ``authgate users ...`` edits take
effect without a restart. Writes go through a temporary file and ``os.replace`` (atomic).
"""
from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from authgate.core.errors import (
    AccountDisabled,
    AuthenticationFailed,
    DirectoryUnavailable,
    PasswordChangeRejected,
)
from authgate.core.values import Identity
from authgate.directory import normalise_username
from authgate.directory.roles import UserMatch

_USER_KEYS = {"display_name", "email", "groups", "password", "disabled", "password_changed_at"}


@dataclass(frozen=True)
class NewUser:
    """An account to add; the password is hashed before anything is written."""

    username: str
    password: str = field(repr=False)
    display_name: str = ""
    email: str = ""
    groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Entry:
    identity: Identity
    password_hash: str
    disabled: bool


class FileDirectory:
    """``Directory`` backed by a YAML file. Verification costs the same for unknown users."""

    name = "file"

    def __init__(self, path: Path, *, hasher: PasswordHasher | None = None) -> None:
        self.path = Path(path)
        self._hasher = hasher or PasswordHasher()  # argon2id, RFC 9106 low-memory profile
        self._lock = threading.Lock()
        self._mtime: float | None = None
        self._entries: dict[str, _Entry] = {}
        self._dummy: str | None = None

    # -- Directory contract -------------------------------------------------------------
    def authenticate(self, *, username: str, password: str) -> Identity:
        entry = self._entries_now().get(normalise_username(username))
        if entry is None:
            self._verify(self._dummy_hash(), password)
            raise AuthenticationFailed("unknown_user")
        if not self._verify(entry.password_hash, password):
            raise AuthenticationFailed("invalid_credentials")
        if entry.disabled:
            raise AccountDisabled("disabled in users file")
        return entry.identity

    def lookup(self, username: str) -> Identity | None:
        entry = self._entries_now().get(normalise_username(username))
        if entry is None or entry.disabled:
            return None
        return entry.identity

    def check(self) -> None:
        self._entries_now()

    def change_password(self, *, username: str, old_password: str, new_password: str) -> None:
        """Self-service change: the old password must verify (one attempt)."""
        self.authenticate(username=username, password=old_password)
        if len(new_password) < 12:
            raise PasswordChangeRejected("Use at least 12 characters.")
        if new_password == old_password:
            raise PasswordChangeRejected("The new password must differ from the old one.")
        self.set_password(username, new_password)

    def search_users(self, text: str, *, limit: int) -> list[UserMatch]:
        """Login names starting with ``text`` or display names containing it, folded for
        case (the ``UserSearch`` role; the LDAP directory asks AD the same question)."""
        needle = text.strip().casefold()
        if not needle:
            return []
        found = [UserMatch(name, e.identity.display_name, e.identity.email, e.disabled)
                 for name, e in sorted(self._entries_now().items())
                 if name.startswith(needle) or needle in e.identity.display_name.casefold()]
        return found[:limit + 1]

    # -- management (the `authgate users` command) -----------------------------------------
    def list_users(self) -> list[tuple[Identity, bool]]:
        return [(e.identity, e.disabled) for _, e in sorted(self._entries_now().items())]

    def add_user(
        self, username: str, password: str, *, display_name: str = "", email: str = "",
        groups: list[str] | None = None,
    ) -> None:
        self.add_users([NewUser(username, password, display_name=display_name, email=email,
                                groups=tuple(groups or ()))])

    def add_users(self, new: Iterable[NewUser]) -> None:
        """Several users in one rewrite of the file (an import): all of them or none.
        ``add_user`` once per user would rewrite the whole file each time."""
        entries: dict[str, dict[str, Any]] = {}
        for user in new:
            name = normalise_username(user.username)
            if not name or any(c.isspace() or ord(c) < 32 for c in name):
                raise ValueError("a username needs printable characters and no spaces")
            if name in entries:
                raise ValueError(f"user {name!r} is given twice")
            entries[name] = {
                "display_name": user.display_name or name, "email": user.email,
                "groups": sorted(user.groups), "password": self._hasher.hash(user.password),
                "password_changed_at": _now_text(), "disabled": False,
            }

        def change(users: dict[str, Any]) -> None:
            for name in entries:
                if name in users:
                    raise ValueError(f"user {name!r} already exists")
            users.update(entries)
        self._modify(change)

    def set_password(self, username: str, password: str) -> None:
        hashed = self._hasher.hash(password)
        changed = _now_text()
        self._modify(lambda users: self._require(users, username).update(
            password=hashed, password_changed_at=changed))

    def set_disabled(self, username: str, disabled: bool) -> None:
        self._modify(lambda users: self._require(users, username).update(disabled=disabled))

    def set_groups(self, username: str, groups: list[str]) -> None:
        self._modify(lambda users: self._require(users, username).update(groups=sorted(groups)))

    # -- internals ------------------------------------------------------------------------
    def _dummy_hash(self) -> str:
        """A real hash of a random password, made on first need: unknown users cost one
        full verification too (no user enumeration by timing)."""
        if self._dummy is None:
            self._dummy = self._hasher.hash(os.urandom(16).hex())
        return self._dummy

    def _verify(self, hashed: str, password: str) -> bool:
        try:
            return self._hasher.verify(hashed, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    @staticmethod
    def _require(users: dict[str, Any], username: str) -> dict[str, Any]:
        name = normalise_username(username)
        if name not in users:
            raise ValueError(f"no user {name!r}")
        return users[name]  # type: ignore[no-any-return]

    def _read_raw(self) -> dict[str, Any]:
        if not self.path.exists():
            return {}
        data = yaml.safe_load(self.path.read_text(encoding="utf-8")) or {}
        users = data.get("users") if isinstance(data, dict) else None
        if not isinstance(users, dict):
            raise ValueError(f"{self.path}: expected a mapping 'users:'")
        return users

    def _modify(self, change: Any) -> None:
        with self._lock:
            users = self._read_raw()
            change(users)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".users-")
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                yaml.safe_dump({"users": users}, fh, sort_keys=True)
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
            self._mtime = None

    def _entries_now(self) -> dict[str, _Entry]:
        try:
            mtime = self.path.stat().st_mtime_ns if self.path.exists() else -1
        except OSError as exc:
            raise DirectoryUnavailable(f"users file unreadable: {exc}") from exc
        with self._lock:
            if mtime != self._mtime:
                try:
                    self._entries = _parse(self._read_raw())
                except (OSError, ValueError, yaml.YAMLError) as exc:
                    raise DirectoryUnavailable(f"users file invalid: {exc}") from exc
                self._mtime = mtime
            return self._entries


def _now_text() -> str:
    """A changed-at stamp; microseconds, so two changes in one second still differ."""
    return datetime.now(UTC).isoformat()


def _parse(users: dict[str, Any]) -> dict[str, _Entry]:
    entries: dict[str, _Entry] = {}
    for raw_name, spec in users.items():
        name = normalise_username(str(raw_name))
        if not isinstance(spec, dict) or set(spec) - _USER_KEYS or "password" not in spec:
            raise ValueError(f"user {name!r}: expected keys from {sorted(_USER_KEYS)}")
        groups = spec.get("groups") or []
        if not isinstance(groups, list):
            raise ValueError(f"user {name!r}: groups must be a list")
        identity = Identity(
            username=name, display_name=str(spec.get("display_name") or name),
            email=str(spec.get("email") or ""), groups=frozenset(str(g) for g in groups),
            stable_id=f"file:{name}", source="file",
            password_set_at=str(spec.get("password_changed_at") or ""),
        )
        entries[name] = _Entry(identity, str(spec["password"]), bool(spec.get("disabled")))
    return entries
