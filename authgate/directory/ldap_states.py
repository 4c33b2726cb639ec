"""Pure translation of Active Directory answers into authgate's terms. No I/O.

Sources: MS-ADTS 2.2.16 (userAccountControl bits), 3.1.1.4.5.17
(msDS-User-Account-Control-Computed), 2.2.1 (FILETIME-style intervals); the bind sub-codes
are Win32 error codes that AD puts in the diagnostic message as ``data XXX`` (MS-ADTS 3.1.1.3.3,
e.g. ``80090308: LdapErr: DSID-0C0903A9, comment: AcceptSecurityContext error, data 52e``).
"""
from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from authgate.core.errors import (
    AccountDisabled,
    AccountExpired,
    AccountLocked,
    AuthenticationFailed,
    AuthgateError,
    DirectoryUnavailable,
    PasswordChangeRejected,
    PasswordExpired,
    PasswordMustChange,
)

UAC_ACCOUNTDISABLE = 0x2
UF_LOCKOUT = 0x10  # computed attribute only
UF_PASSWORD_EXPIRED = 0x800000  # computed attribute only
_NEVER = (0, 0x7FFFFFFFFFFFFFFF)  # accountExpires values meaning "never" (MS-ADA1)
_EPOCH_1601 = datetime(1601, 1, 1, tzinfo=UTC)
_DATA_CODE = re.compile(r"\bdata ([0-9a-fA-F]{1,8})\b")
_LEADING_CODE = re.compile(r"^\s*([0-9a-fA-F]{8}):")
# LDAP result codes meaning "this server cannot serve now" (RFC 4511 4.1.9)
UNAVAILABLE_RESULTS = {1, 2, 8, 51, 52, 80}


class AccountState(StrEnum):
    ACTIVE = "active"
    DISABLED = "account_disabled"
    LOCKED = "account_locked"
    ACCOUNT_EXPIRED = "account_expired"
    PASSWORD_EXPIRED = "password_expired"  # noqa: S105 - a state name, not a password
    PASSWORD_MUST_CHANGE = "password_must_change"  # noqa: S105

    @property
    def may_keep_session(self) -> bool:
        """Disabled, locked and expired accounts lose their sessions; password states do not."""
        return self in (AccountState.ACTIVE, AccountState.PASSWORD_EXPIRED,
                        AccountState.PASSWORD_MUST_CHANGE)


def data_code(message: str) -> str | None:
    """The ``data XXX`` Win32 sub-code of an AD bind failure, lower-case, or None."""
    match = _DATA_CODE.search(message or "")
    return match.group(1).lower() if match else None


_BIND_STATES: dict[str, type[AuthenticationFailed]] = {
    "533": AccountDisabled,  # ERROR_ACCOUNT_DISABLED
    "775": AccountLocked,  # ERROR_ACCOUNT_LOCKED_OUT
    "701": AccountExpired,  # ERROR_ACCOUNT_EXPIRED
    "532": PasswordExpired,  # ERROR_PASSWORD_EXPIRED
    "773": PasswordMustChange,  # ERROR_PASSWORD_MUST_CHANGE
}
_BIND_REASONS = {
    "52e": "invalid_credentials",  # ERROR_LOGON_FAILURE (also unknown user on Samba)
    "525": "invalid_credentials",  # ERROR_NO_SUCH_USER
    "530": "logon_hours",  # ERROR_INVALID_LOGON_HOURS
    "531": "logon_workstation",  # ERROR_INVALID_WORKSTATION
    "568": "too_many_sids",  # ERROR_TOO_MANY_CONTEXT_IDS
}


def bind_failure(result: Mapping[str, Any]) -> AuthgateError:
    """The exception for a failed user bind, from ldap3's ``conn.result``."""
    code = result.get("result")
    message = str(result.get("message") or "")
    detail = f"{result.get('description')}: {message}".strip()
    if code in UNAVAILABLE_RESULTS:
        return DirectoryUnavailable(f"bind not served: {detail}")
    sub = data_code(message)
    if code == 49 and sub in _BIND_STATES:
        return _BIND_STATES[sub](detail)
    if code == 49:
        return AuthenticationFailed(_BIND_REASONS.get(sub or "", "invalid_credentials"), detail)
    return AuthenticationFailed("bind_refused", detail)


def account_state(
    *, user_account_control: int, computed: int, pwd_last_set: int | None,
    account_expires: int | None, now: datetime,
) -> AccountState:
    """The state AD would enforce at the next bind, from attributes read by the service account.

    Lockout and password expiry come from ``msDS-User-Account-Control-Computed`` only: plain
    ``userAccountControl`` does not carry them (MS-ADTS 3.1.1.4.5.17).
    """
    if user_account_control & UAC_ACCOUNTDISABLE:
        return AccountState.DISABLED
    if account_expires not in (None, *_NEVER) and filetime(account_expires or 0) <= now:
        return AccountState.ACCOUNT_EXPIRED
    if computed & UF_LOCKOUT:
        return AccountState.LOCKED
    if pwd_last_set == 0:
        return AccountState.PASSWORD_MUST_CHANGE
    if computed & UF_PASSWORD_EXPIRED:
        return AccountState.PASSWORD_EXPIRED
    return AccountState.ACTIVE


def state_error(state: AccountState) -> AuthenticationFailed | None:
    """The exception ``authenticate`` would raise for an account in ``state``."""
    by_state: dict[AccountState, type[AuthenticationFailed]] = {
        AccountState.DISABLED: AccountDisabled, AccountState.LOCKED: AccountLocked,
        AccountState.ACCOUNT_EXPIRED: AccountExpired,
        AccountState.PASSWORD_EXPIRED: PasswordExpired,
        AccountState.PASSWORD_MUST_CHANGE: PasswordMustChange,
    }
    cls = by_state.get(state)
    return cls("from account attributes") if cls else None


def filetime(value: int) -> datetime:
    """A FILETIME (100 ns ticks since 1601-01-01 UTC) as an aware datetime."""
    try:
        return _EPOCH_1601 + timedelta(microseconds=value // 10)
    except OverflowError:
        return datetime.max.replace(tzinfo=UTC)


def interval(value: int) -> timedelta:
    """A domain policy interval (negative 100 ns ticks, e.g. lockOutObservationWindow)."""
    return timedelta(microseconds=abs(value) // 10)


def guid_text(raw: bytes) -> str:
    """objectGUID is stored little-endian in its first three fields (MS-DTYP 2.3.4)."""
    return str(uuid.UUID(bytes_le=bytes(raw)))


def parse_login_name(raw: str, *, upn_suffix: str, netbios_domain: str) -> str | None:
    """``alice``, ``alice@city.test`` and ``CITY\\alice`` all give ``alice``.

    Another domain or UPN suffix gives None (treated as an unknown user). Control characters
    (NUL included) never reach a filter. The result is still escaped (RFC 4515) by the caller.
    """
    name = raw.strip()
    if not name or any(ord(c) < 32 or ord(c) == 127 for c in name):
        return None
    if "\\" in name:
        domain, _, name = name.partition("\\")
        if not netbios_domain or domain.lower() != netbios_domain.lower():
            return None
    elif "@" in name:
        name, _, suffix = name.rpartition("@")
        if not upn_suffix or suffix.lower() != upn_suffix.lower():
            return None
    if not name or "\\" in name or "@" in name:
        return None
    return name.lower()


_CHANGE_MESSAGES = (
    ("too short", "The new password is too short."),
    ("complexity", "The new password is not complex enough: mix upper and lower case letters, "
                   "digits and symbols, and do not use your name."),
    ("history", "The new password was used before: choose one you have not used."),
    ("too young", "Your password was changed too recently: try again later."),
)
_POLICY_GENERIC = ("The new password does not meet the password policy "
                   "(length, complexity, history or minimum age).")


def password_change_failure(result: Mapping[str, Any]) -> AuthgateError:
    """The exception for a refused password change (old + new value, MS-ADTS 3.1.1.3.1.5.2)."""
    code = result.get("result")
    message = str(result.get("message") or "")
    lead = _LEADING_CODE.match(message)
    win32 = lead.group(1).lower() if lead else ""
    if code in UNAVAILABLE_RESULTS:
        return DirectoryUnavailable(f"password change not served: {message}")
    if win32 == "00000056" or data_code(message) == "56":  # ERROR_INVALID_PASSWORD: wrong old one
        return AuthenticationFailed("invalid_credentials", f"password change: {message}")
    if data_code(message) in _BIND_STATES:
        return _BIND_STATES[data_code(message) or ""](f"password change: {message}")
    if code in (19, 53):  # constraintViolation, unwillingToPerform: the policy said no
        lower = message.lower()
        text = next((t for key, t in _CHANGE_MESSAGES if key in lower), _POLICY_GENERIC)
        return PasswordChangeRejected(text)
    return PasswordChangeRejected("The password could not be changed. Contact IT.")
