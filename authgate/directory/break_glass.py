"""Break-glass accounts beside Active Directory.

A few named local accounts (argon2id, the file directory) keep authgate administrable when
AD is down or compromised. A name found in the break-glass file is authenticated only there,
never against AD. Such sessions are usable only after WebAuthn with user verification
(``authgate.access.next_step``, ``authgate.access.forward_auth``), and every use is a
high-severity audit event.
"""
from __future__ import annotations

import dataclasses

from authgate.core.errors import PasswordChangeRejected
from authgate.core.values import Identity
from authgate.directory import Directory, normalise_username
from authgate.directory.file import FileDirectory
from authgate.directory.ldap_states import AccountState
from authgate.directory.roles import AccountStatus, DirectoryRoles, UserMatch

BREAK_GLASS = "break_glass"


class BreakGlassDirectory:
    """The break-glass file first (for its own names only), then ``primary`` (AD).

    Plays exactly ``Directory``, ``AccountStatusSource``, ``PasswordChanger`` and
    ``UserSearch`` (the local accounts, then AD's when it searches). The roles
    that describe AD itself (its lockout policy, its login-name forms, its diagnosis) are
    not forwarded: they belong to ``primary``, where the composition root finds them once,
    so the AD lockout guard and login-name canonicalisation apply with break-glass too.
    """

    def __init__(self, *, primary: Directory, local: FileDirectory,
                 primary_roles: DirectoryRoles) -> None:
        self.primary: Directory = primary
        self.local = local
        self.name = f"{primary.name}+{BREAK_GLASS}"
        self._primary_status = primary_roles.account_status
        self._primary_changer = primary_roles.password_changer
        self._primary_search = primary_roles.user_search

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

    def account_status(self, username: str) -> AccountStatus | None:
        """A local account is active while it is enabled; AD reports its own states (or,
        for a primary without states, active while it can be looked up)."""
        if self.is_local(username):
            identity = self.lookup(username)
            return AccountStatus(identity, AccountState.ACTIVE) if identity else None
        if self._primary_status is not None:
            return self._primary_status.account_status(username)
        identity = self.primary.lookup(username)
        return AccountStatus(identity, AccountState.ACTIVE) if identity else None

    def check(self) -> None:
        self.primary.check()

    def search_users(self, text: str, *, limit: int) -> list[UserMatch]:
        local = self.local.search_users(text, limit=limit)
        names = {m.username for m in local}
        primary = (self._primary_search.search_users(text, limit=limit)
                   if self._primary_search is not None else [])
        merged = local + [m for m in primary if m.username not in names]
        return sorted(merged, key=lambda m: m.username)[:limit + 1]

    def change_password(self, *, username: str, old_password: str, new_password: str) -> None:
        if self.is_local(username):
            self.local.change_password(username=username, old_password=old_password,
                                       new_password=new_password)
            return
        if self._primary_changer is None:  # fail closed: no directory to send it to
            raise PasswordChangeRejected("Passwords cannot be changed here.")
        self._primary_changer.change_password(username=username, old_password=old_password,
                                               new_password=new_password)
