"""The password step of a login: directory bind → audit → session at level ``password``.

Users see one of a few generic outcomes; the audit record holds the precise reason
(ASVS 2.2.1 enumeration defence, 7.1.4). Brute-force regulation plugs in before the bind.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from authgate.audit import AuditLog
from authgate.audit.names import NameMask
from authgate.core.errors import (
    AccountDisabled,
    AccountExpired,
    AccountLocked,
    AuthenticationFailed,
    DirectoryUnavailable,
    PasswordChangeRejected,
    PasswordExpired,
    PasswordMustChange,
)
from authgate.core.values import AuditEvent, Level, Outcome
from authgate.directory import Directory, PasswordChanger, normalise_username
from authgate.regulation import Admission, AttemptOutcome, NoRegulation, Regulator
from authgate.sessions.service import Issued, SessionService

MAX_USERNAME = 256
MAX_PASSWORD = 1024


class LoginStatus(str, Enum):
    OK = "ok"
    INVALID = "invalid"  # wrong password, unknown user, malformed input: one message
    CONTACT_IT = "contact_it"  # disabled or expired account, the right password (533, 701)
    CHANGE_PASSWORD = "change_password"  # noqa: S105 - a status name  # expired or must-change password
    UNAVAILABLE = "unavailable"  # no directory server answered


@dataclass(frozen=True)
class LoginAttempt:
    username: str
    password: str
    client_ip: str
    user_agent: str
    request_id: str
    method: str = ""  # the portal page that asked, for the record
    path: str = ""


#: the one message a refused password gets, whatever the reason (no account enumeration)
INCORRECT = "The username or password is incorrect."


@dataclass(frozen=True)
class PasswordChange:
    changed: bool
    message: str  # safe to show the user (AD's complexity rules in plain words)
    field: str = ""  # the form field the refusal is about, if one is (WCAG 3.3.1)


@dataclass(frozen=True)
class LoginResult:
    status: LoginStatus
    issued: Issued | None = None
    username: str = ""


_STATUS_BY_ERROR: tuple[tuple[type[Exception], LoginStatus], ...] = (
    (PasswordExpired, LoginStatus.CHANGE_PASSWORD),
    (PasswordMustChange, LoginStatus.CHANGE_PASSWORD),
    (AccountDisabled, LoginStatus.CONTACT_IT),  # 533: AD sends it for the right password only
    (AccountExpired, LoginStatus.CONTACT_IT),  # 701: likewise
    # AccountLocked (775) is not here: AD sends it for any password, so it is answered as a
    # wrong password (issue 15 finding 5; docs/active-directory.md "Account states").
    (AuthenticationFailed, LoginStatus.INVALID),
)


class LoginService:
    def __init__(self, *, directory: Directory, password_changer: PasswordChanger | None,
                 sessions: SessionService, audit: AuditLog,
                 regulator: Regulator | None = None) -> None:
        """``password_changer`` is the directory in that role, or None where passwords
        cannot be changed here (every change is then refused as malformed)."""
        self._directory = directory
        self._password_changer = password_changer
        self._sessions = sessions
        self._audit = audit
        self._names = NameMask.for_keyring(audit.keyring)  # unconfirmed names: pseudonyms
        self._regulator: Regulator = regulator or NoRegulation()

    def password_step(self, attempt: LoginAttempt) -> LoginResult:
        username = normalise_username(attempt.username)
        if not _plausible(username, attempt.password):
            self._record(attempt, username, Outcome.FAILURE, "malformed_input")
            return LoginResult(LoginStatus.INVALID)
        admission = self._regulator.admit_password(username=username, ip=attempt.client_ip,
                                                   password=attempt.password)
        if not admission.allowed:  # banned: same answer as a wrong password, no bind at all
            self._record(attempt, username, Outcome.FAILURE, admission.reason)
            return LoginResult(LoginStatus.INVALID)
        try:
            identity = self._directory.authenticate(username=username,
                                                    password=attempt.password)
        except DirectoryUnavailable as exc:
            self._settle(admission, attempt, outcome_for(exc))  # no bind sent
            self._record(attempt, username, Outcome.ERROR, exc.reason)
            return LoginResult(LoginStatus.UNAVAILABLE)
        except AuthenticationFailed as exc:
            self._settle(admission, attempt, outcome_for(exc))
            self._record(attempt, username, Outcome.FAILURE, exc.reason, detail=str(exc)[:200],
                         confirmed=_confirms(exc))
            return LoginResult(_status_for(exc), username=username)
        self._settle(admission, attempt, AttemptOutcome.SUCCESS,
                     password_stamp=identity.password_set_at)
        issued = self._sessions.start(identity, level=Level.PASSWORD,
                                      client_ip=attempt.client_ip,
                                      user_agent=attempt.user_agent)
        vouched = {"ad_guard": admission.reason} if admission.reason else {}
        self._record(attempt, identity.username, Outcome.SUCCESS, "password_ok",
                     confirmed=True, source=identity.source, **vouched)
        if identity.source == "break_glass":  # every use is a high-severity event
            self._record(attempt, identity.username, Outcome.INFO, "break_glass_used",
                         confirmed=True, event="login.break_glass", severity="high")
        return LoginResult(LoginStatus.OK, issued, identity.username)

    def change_password(self, attempt: LoginAttempt, new_password: str) -> PasswordChange:
        """An expired or must-change password replaced with the old one (over TLS for AD).

        It is a password attempt like any other: regulated before the directory is touched,
        counted after, audited with the precise outcome (never the passwords)."""
        username = normalise_username(attempt.username)
        changer = self._password_changer
        if changer is None or not _plausible(username, attempt.password) or not (
                0 < len(new_password) <= MAX_PASSWORD):
            self._record(attempt, username, Outcome.FAILURE, "malformed_input",
                         event="password.change")
            return PasswordChange(False, "The password could not be changed.")
        admission = self._regulator.admit_password(username=username, ip=attempt.client_ip,
                                                   password=attempt.password)
        if not admission.allowed:
            self._record(attempt, username, Outcome.FAILURE, admission.reason,
                         event="password.change")
            return PasswordChange(False, INCORRECT, field="old_password")  # as a wrong one
        try:
            changer.change_password(username=username, old_password=attempt.password,
                                    new_password=new_password)
        except PasswordChangeRejected as exc:  # the old password was right: not a guess
            self._settle(admission, attempt, outcome_for(exc))
            self._record(attempt, username, Outcome.FAILURE, exc.reason, event="password.change",
                         confirmed=True)
            return PasswordChange(False, str(exc), field="new_password")
        except DirectoryUnavailable as exc:
            self._settle(admission, attempt, outcome_for(exc))
            self._record(attempt, username, Outcome.ERROR, exc.reason, event="password.change")
            return PasswordChange(False, "Sign-in is unavailable right now. Try again later.")
        except AuthenticationFailed as exc:
            self._settle(admission, attempt, outcome_for(exc))
            self._record(attempt, username, Outcome.FAILURE, exc.reason, event="password.change",
                         confirmed=_confirms(exc))
            return PasswordChange(False, INCORRECT, field="old_password")
        return self._changed(admission, attempt, username, new_password)

    def _changed(self, admission: Admission, attempt: LoginAttempt, username: str,
                 new_password: str) -> PasswordChange:
        """Settled with the new password under its new pwdLastSet (the AD guard's verifier
        then holds it), audited, every session of the account ended."""
        self._regulator.record_password(
            admission=admission, outcome=AttemptOutcome.PASSWORD_CHANGED,
            password=new_password, password_stamp=self._stamp_now(username))
        self._record(attempt, username, Outcome.SUCCESS, "password_changed",
                     event="password.change", confirmed=True,
                     sessions_ended=str(self._end_sessions(username)))
        return PasswordChange(True, "")

    def _stamp_now(self, username: str) -> str:
        """The account's ``pwdLastSet`` as the directory says it now ("" when it cannot
        say): a search as the service account, never a bind."""
        try:
            identity = self._directory.lookup(username)
        except DirectoryUnavailable:
            return ""
        return identity.password_set_at if identity is not None else ""

    def _end_sessions(self, username: str) -> int:
        """After a change: end every session of the account (issue 14 finding 4, ASVS
        3.3.3). The change page takes no session, so none is kept. Sessions are keyed by the
        directory's canonical name (``alice`` for ``alice@city.test``); if the directory
        cannot say it now, the re-read ends them when it sees ``pwdLastSet`` moved."""
        try:
            identity = self._directory.lookup(username)
        except DirectoryUnavailable:
            identity = None
        return self._sessions.end_all_for(identity.username if identity else username)

    def _settle(self, admission: Admission, attempt: LoginAttempt,
                outcome: AttemptOutcome, *, password_stamp: str = "") -> None:
        """Close the regulator's reservation for this attempt (every admitted attempt is
        settled exactly once, or it would hold an AD slot until it expires)."""
        self._regulator.record_password(admission=admission, outcome=outcome,
                                        password=attempt.password,
                                        password_stamp=password_stamp)

    def _record(self, attempt: LoginAttempt, username: str, outcome: Outcome, reason: str,
                *, event: str = "login.password", confirmed: bool = False,
                **detail: str) -> None:
        """One audit record of this step. ``confirmed``: the directory knew the name (it
        answered for the account); otherwise the typed text, perhaps a password, is kept
        only as its pseudonym (``audit.names``, ASVS 7.1.1)."""
        self._audit.record(AuditEvent(
            event=event, outcome=outcome, reason=reason,
            username=self._names.recorded(username, confirmed=confirmed),
            client_ip=attempt.client_ip, user_agent=attempt.user_agent,
            request_id=attempt.request_id, method=attempt.method, path=attempt.path,
            detail=tuple(sorted(detail.items())),
        ))


def _plausible(username: str, password: str) -> bool:
    return (0 < len(username) <= MAX_USERNAME and 0 < len(password) <= MAX_PASSWORD
            and "\x00" not in username and "\x00" not in password)


#: Right password, refused account state (773, 532, 533, 701 come only with the right
#: password): not a guess.
_RIGHT_PASSWORD_STATES: tuple[type[AuthenticationFailed], ...] = (
    PasswordExpired, PasswordMustChange, AccountDisabled, AccountExpired)
#: Failures AD counted no bad password for: no bind was sent (the name was not found, or
#: the password was empty).
_NO_BIND = frozenset({"unknown_user", "empty_password", "ambiguous_user"})


def _confirms(exc: AuthenticationFailed) -> bool:
    """Whether the directory's refusal shows the account exists (it was found and
    answered): every refusal but the no-bind ones, where the name may be anything typed."""
    return exc.reason not in _NO_BIND


def outcome_for(exc: Exception) -> AttemptOutcome:
    """How the regulator counts a directory answer (``AttemptOutcome``); the exception's
    reason string stays for the audit record."""
    if isinstance(exc, DirectoryUnavailable):
        # An interrupted bind also arrives as DirectoryUnavailable (directory/ldap.py does
        # not tell it apart yet), so it is given back as before, not INTERRUPTED.
        return AttemptOutcome.UNAVAILABLE
    if isinstance(exc, (PasswordChangeRejected, *_RIGHT_PASSWORD_STATES)):
        return AttemptOutcome.RIGHT_PASSWORD_REFUSED
    if isinstance(exc, AccountLocked):  # 775: AD counts no further failures
        return AttemptOutcome.NOT_SENT
    if isinstance(exc, AuthenticationFailed):
        if exc.reason in _NO_BIND:
            return AttemptOutcome.NOT_SENT
        if exc.reason == "invalid_credentials":
            return AttemptOutcome.WRONG_PASSWORD
        return AttemptOutcome.BIND_REFUSED  # 530, 531, 568, other refusals: AD counted it
    raise TypeError(f"not a directory answer: {type(exc).__name__}")


def _status_for(exc: AuthenticationFailed) -> LoginStatus:
    for cls, status in _STATUS_BY_ERROR:
        if isinstance(exc, cls):
            return status
    return LoginStatus.INVALID
