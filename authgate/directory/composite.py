"""Break-glass accounts beside Active Directory.

A few named local accounts (argon2id, the file directory) keep authgate administrable when
AD is down or compromised. A name found in the break-glass file is authenticated only there,
never against AD. Such sessions are usable only after WebAuthn with user verification
(``authgate.access.next_step``, ``authgate.access.forward_auth``), and every use is a
high-severity audit event.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from authgate.core.values import Identity
from authgate.directory import Directory, normalise_username
from authgate.directory.file import FileDirectory
from authgate.directory.ldap_states import AccountState

BREAK_GLASS = "break_glass"


@dataclass(frozen=True)
class LocalStatus:
    identity: Identity
    state: AccountState
    dn: str = ""


class BreakGlassDirectory:
    """``Directory``: the break-glass file first (for its own names only), then AD."""

    def __init__(self, *, primary: Directory, local: FileDirectory) -> None:
        self.primary = primary
        self.local = local
        self.name = f"{primary.name}+{BREAK_GLASS}"

    def is_local(self, username: str) -> bool:
        name = normalise_username(username)
        return any(identity.username == name for identity, _ in self.local.list_users())

    def authenticate(self, *, username: str, password: str) -> Identity:
        if self.is_local(username):
            identity = self.local.authenticate(username=username, password=password)
            return dataclasses.replace(identity, source=BREAK_GLASS)
        return self.primary.authenticate(username=username, password=password)

    def lookup(self, username: str) -> Identity | None:
        if self.is_local(username):
            identity = self.local.lookup(username)
            return dataclasses.replace(identity, source=BREAK_GLASS) if identity else None
        return self.primary.lookup(username)

    def account_status(self, username: str) -> object | None:
        if self.is_local(username):
            identity = self.lookup(username)
            if identity is None:
                return None
            return LocalStatus(identity, AccountState.ACTIVE)
        status_of = getattr(self.primary, "account_status", None)
        if status_of is not None:
            return status_of(username)  # type: ignore[no-any-return]
        identity = self.primary.lookup(username)
        return LocalStatus(identity, AccountState.ACTIVE) if identity else None

    def check(self) -> None:
        self.primary.check()

    def __getattr__(self, name: str) -> object:
        """Operator and regulation views of AD (``settings``, ``domain_lockout_policy``,
        ``diagnose``) come from the primary directory, so with break-glass configured the
        AD lockout guard and login-name canonicalisation still apply."""
        if name in _DELEGATED:
            return object.__getattribute__(self.primary, name)
        raise AttributeError(name)


    def change_password(self, *, username: str, old_password: str, new_password: str) -> None:
        target = self.local if self.is_local(username) else self.primary
        target.change_password(username=username, old_password=old_password,  # type: ignore[attr-defined]
                               new_password=new_password)


_DELEGATED = frozenset({"settings", "domain_lockout_policy", "diagnose"})
