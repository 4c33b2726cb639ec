"""Optional roles a directory may play beside the ``Directory`` contract.

Not every directory can report an account's precise state, change a password, tell AD's
lockout policy or map the many spellings of one login name to one. Each of those is a small
``runtime_checkable`` Protocol here; the composition root checks them once
(``DirectoryRoles``) and hands use cases the role objects, or None, so no use case probes a
directory for a method (Warehouse: one interface per capability, chosen in one place).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol, runtime_checkable

from authgate.core.values import Identity
from authgate.directory.ldap_states import AccountState


@dataclass(frozen=True)
class AccountStatus:
    """An account as the directory sees it: identity plus the state it enforces."""

    identity: Identity
    state: AccountState
    dn: str = ""


@runtime_checkable
class AccountStatusSource(Protocol):
    """Reports disabled, locked and expired accounts, not just "usable or not"."""

    def account_status(self, username: str) -> AccountStatus | None:
        """The account's identity and state; None when no such account exists. Raises
        ``DirectoryUnavailable`` on outage."""
        ...


@runtime_checkable
class PasswordChanger(Protocol):
    """Self-service password change with the old password (one attempt, like a bind)."""

    def change_password(self, *, username: str, old_password: str, new_password: str) -> None:
        """Raises ``PasswordChangeRejected`` (message safe to show), ``AuthenticationFailed``
        or ``DirectoryUnavailable``."""
        ...


@runtime_checkable
class LockoutPolicySource(Protocol):
    """A directory that locks accounts itself (AD): the regulator must throttle first."""

    def domain_lockout_policy(self) -> tuple[int, timedelta]:
        """(lockoutThreshold, lockOutObservationWindow) of the domain (MS-ADTS 3.1.1.5.3)."""
        ...


@runtime_checkable
class LoginNameCanonicaliser(Protocol):
    """A directory that accepts several spellings of one account (``alice``,
    ``alice@city.test``, ``CITY\\alice``): they must share one failure counter."""

    def canonical_login_name(self, name: str) -> str:
        """The one form every accepted spelling of ``name`` maps to."""
        ...


@dataclass(frozen=True)
class UserMatch:
    """One account a search found: enough to tell people apart and open their page."""

    username: str
    display_name: str
    email: str = ""
    disabled: bool = False


@runtime_checkable
class UserSearch(Protocol):
    """Finds accounts by the start of their login name or any part of their display name,
    so an admin need not know the exact username (issue 17 item 8)."""

    def search_users(self, text: str, *, limit: int) -> list[UserMatch]:
        """At most ``limit`` accounts whose login name starts with ``text`` or whose display
        name contains it (case-insensitive), sorted by login name; ``limit + 1`` results
        are allowed to tell "more" apart. Raises ``DirectoryUnavailable`` on outage."""
        ...


@dataclass(frozen=True)
class DirectoryRoles:
    """The optional roles of one directory, found once; None where it does not play one."""

    account_status: AccountStatusSource | None = None
    password_changer: PasswordChanger | None = None
    lockout_policy: LockoutPolicySource | None = None
    login_names: LoginNameCanonicaliser | None = None
    user_search: UserSearch | None = None


def roles_of(directory: object) -> DirectoryRoles:
    """The roles ``directory`` plays (the one place they are checked)."""
    return DirectoryRoles(
        account_status=directory if isinstance(directory, AccountStatusSource) else None,
        password_changer=directory if isinstance(directory, PasswordChanger) else None,
        lockout_policy=directory if isinstance(directory, LockoutPolicySource) else None,
        login_names=directory if isinstance(directory, LoginNameCanonicaliser) else None,
        user_search=directory if isinstance(directory, UserSearch) else None,
    )
