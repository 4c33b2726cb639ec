"""One exception tree. Library errors are wrapped at the boundary (``raise X from exc``).

Messages here are for operators and the audit log; users only ever see the generic text
chosen by the web layer from the exception's class.
"""
from __future__ import annotations


class AuthgateError(Exception):
    """Root of every error authgate raises on purpose."""

    #: machine-readable reason code for audit records
    reason: str = "error"


class ConfigError(AuthgateError):
    """The configuration is invalid. ``problems`` lists every error with its path."""

    reason = "config_invalid"

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(self.problems) or "invalid configuration")


class PolicyError(AuthgateError):
    """The policy set is invalid or not approved."""

    reason = "policy_invalid"

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(self.problems) or "invalid policy")


class StorageError(AuthgateError):
    """The database failed; callers deny."""

    reason = "storage_error"


class DirectoryError(AuthgateError):
    reason = "directory_error"


class DirectoryUnavailable(DirectoryError):
    """No directory server answered."""

    reason = "directory_unavailable"


class AuthenticationFailed(DirectoryError):
    """The credentials were not accepted. ``reason`` says precisely why (audit only)."""

    reason = "invalid_credentials"

    def __init__(self, reason: str = "invalid_credentials", detail: str = "") -> None:
        self.reason = reason
        super().__init__(detail or reason)


class AccountDisabled(AuthenticationFailed):
    def __init__(self, detail: str = "") -> None:
        super().__init__("account_disabled", detail)


class AccountLocked(AuthenticationFailed):
    def __init__(self, detail: str = "") -> None:
        super().__init__("account_locked", detail)


class AccountExpired(AuthenticationFailed):
    def __init__(self, detail: str = "") -> None:
        super().__init__("account_expired", detail)


class PasswordExpired(AuthenticationFailed):
    """The password is right but has expired: the user must change it."""

    def __init__(self, detail: str = "") -> None:
        super().__init__("password_expired", detail)


class PasswordMustChange(AuthenticationFailed):
    """The password is right but an administrator requires a change (pwdLastSet = 0)."""

    def __init__(self, detail: str = "") -> None:
        super().__init__("password_must_change", detail)


class PasswordChangeRejected(DirectoryError):
    """The directory refused a new password; ``message`` is safe to show the user."""

    reason = "password_change_rejected"


class SessionInvalid(AuthgateError):
    reason = "session_invalid"


class RedirectRefused(AuthgateError):
    """A return URL failed validation."""

    reason = "redirect_refused"


class UntrustedRequest(AuthgateError):
    """The forward-auth request lacks what is needed to decide (e.g. no original host)."""

    reason = "bad_request"
