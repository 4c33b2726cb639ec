"""Who the user is: the ``Directory`` contract, its optional roles and implementations.

Implementations: ``FileDirectory`` (YAML users file, argon2id; the embedded default and the
break-glass store), ``LdapDirectory`` (Active Directory over LDAPS, ldap3) and
``BreakGlassDirectory`` (the first beside the second). What a directory can do beyond the
contract is named by the Protocols in ``authgate.directory.roles``, re-exported here.
"""
from __future__ import annotations

from typing import Protocol

from authgate.core.values import Identity
from authgate.directory.roles import (
    AccountStatus,
    AccountStatusSource,
    DirectoryRoles,
    LockoutPolicySource,
    LoginNameCanonicaliser,
    PasswordChanger,
    UserMatch,
    UserSearch,
    roles_of,
)


class Directory(Protocol):
    """The contract every user directory meets (tested once against each backend).

    ``authenticate`` checks the password with exactly one attempt and returns the identity,
    or raises ``AuthenticationFailed`` (or a subclass naming the precise account state) or
    ``DirectoryUnavailable``. It never says to the caller whether the user exists other
    than through the exception's ``reason``, which is for the audit log only.
    """

    name: str

    def authenticate(self, *, username: str, password: str) -> Identity: ...

    def lookup(self, username: str) -> Identity | None:
        """The identity of an existing, enabled account, or None. Raises on outage."""
        ...

    def check(self) -> None:
        """Raise ``DirectoryUnavailable`` when the directory cannot serve logins."""
        ...


def normalise_username(raw: str) -> str:
    """Trim and lower-case a login name; the directory decides what else it accepts."""
    return raw.strip().lower()


__all__ = ["AccountStatus", "AccountStatusSource", "Directory", "DirectoryRoles",
           "LockoutPolicySource", "LoginNameCanonicaliser", "PasswordChanger",
           "UserMatch", "UserSearch", "normalise_username", "roles_of"]
