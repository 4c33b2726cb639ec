"""Brute-force and password-spray regulation: the contract the login flow calls.

The ban check runs **before** the directory bind (Authelia's rule), so a banned source never
costs the user an Active Directory bad-password count. Every admitted attempt comes back as an
``Admission`` carrying an opaque reservation; the caller hands it back to ``record_*`` with
the ``AttemptOutcome`` it observed, exactly once. ``NoRegulation`` is the null object used
where regulation is not wanted (unit tests of other layers); never an ``if enabled:``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol

from authgate.core.values import RequestMeta
from authgate.storage.regulation_rows import Ban
from authgate.storage.step_interfaces import FactorCounters

__all__ = ["ADMIT", "Admission", "AttemptOutcome", "Ban", "BanRegistry", "FactorOutcome",
           "NoRegulation", "Regulator", "shown_subject"]

class AttemptOutcome(str, Enum):
    """What became of an admitted password attempt: decides how it is counted.

    Set by the caller (``login.password``) from the directory's answer; the precise reason
    string goes to the audit record only."""

    #: Signed in: the AD mirror and this IP's counter reset, the IP becomes familiar.
    SUCCESS = "success"
    #: AD counted a bad password: counted once, the AD slot kept, its timing feeds the floor.
    WRONG_PASSWORD = "wrong_password"  # noqa: S105 - an outcome name
    #: AD refused the bind for another reason (530, 531, 568, ...): counted like a guess.
    BIND_REFUSED = "bind_refused"
    #: AD counted nothing (no bind: unknown or ambiguous user, empty password; or 775, the
    #: account already locked): counted by policy, the AD slot given back.
    NOT_SENT = "not_sent"
    #: The right password in a refused state (773, 532, 533, 701) or a rejected new
    #: password: not a guess, nothing counted, the password's hash not kept.
    RIGHT_PASSWORD_REFUSED = "right_password_refused"  # noqa: S105 - an outcome name
    #: A change proves the old password, but whether AD then resets badPwdCount is not
    #: documented: given back, nothing reset (the next sign-in will).
    PASSWORD_CHANGED = "password_changed"  # noqa: S105 - an outcome name
    #: No directory answered, no bind sent: given back.
    UNAVAILABLE = "unavailable"
    #: The bind was sent but its answer lost: given back, but the AD slot is kept (AD may
    #: have counted it; a slow DC must never become a way round the guard).
    INTERRUPTED = "interrupted"


class FactorOutcome(str, Enum):
    """What became of an admitted second-factor attempt."""

    SUCCESS = "success"  # the user's factor failures are forgotten
    FAILURE = "failure"  # counted; may start a ``factor_banned``


@dataclass(frozen=True)
class Admission:
    allowed: bool
    reason: str = ""  # for the audit record only: user_banned, ip_banned, spray_source, ...
    #: The regulator's reservation, opaque to the caller, who hands it back to ``record_*``.
    reservation: object = field(default=None, repr=False, compare=False)


ADMIT = Admission(True)


class BanRegistry(Protocol):
    """The operators' view of the bans (admin console, ``authgate bans``)."""

    def active_bans(self) -> list[Ban]: ...

    def lift(self, target: str, *, operator: str, reason: str,
             meta: RequestMeta | None = None) -> list[str]:
        """Lift the bans on a user or an IP, audited with ``operator`` and ``reason``;
        returns the subjects that were banned. The reason rule is the caller's
        (``admin.bans``)."""
        ...


class Regulator(BanRegistry, Protocol):
    def admit_password(self, *, username: str, ip: str, password: str | None = None
                       ) -> Admission:
        """May this attempt reach the directory? Called before the bind. With ``password``
        (reduced to a keyed hash at once) a repeat of a recent wrong password and a sprayed
        password are refused before they cost the account an AD bad-password count.
        While the AD guard holds the account, a password matching the verifier of the one
        AD last accepted is still admitted (``Admission.reason`` ``password_verifier``)."""
        ...

    def record_password(self, *, admission: Admission, outcome: AttemptOutcome,
                        password: str, password_stamp: str = "") -> None:
        """Settle the admitted attempt by its outcome. On a success ``password_stamp`` is the
        directory's ``Identity.password_set_at`` (AD ``pwdLastSet``): the password verifier
        is replaced under it (issue 15 finding 6). ``password`` is only ever reduced to
        a keyed hash."""
        ...

    def admit_factor(self, *, username: str) -> Admission:
        """Second-factor attempts are throttled per user, apart from passwords."""
        ...

    def record_factor(self, *, admission: Admission, outcome: FactorOutcome,
                      meta: RequestMeta | None = None) -> None:
        """Settle an admitted second-factor attempt; a ban it starts is audited with
        ``meta``, the request that failed (address, agent, request id, method, path)."""
        ...

    def reserve_factor(self, counters: FactorCounters, *, username: str) -> Admission:
        """``admit_factor`` on the caller's transaction (a login step's writes commit
        together, issue 20 item 1). A refusal is not audited here, since nothing else may
        write inside that transaction: pass it to ``factor_refused`` once it has ended."""
        ...

    def factor_refused(self, *, username: str, reason: str) -> None:
        """Audit a refusal of ``reserve_factor``, after the caller's transaction."""
        ...

    def factor_succeeded(self, counters: FactorCounters, *, admission: Admission) -> None:
        """``record_factor(SUCCESS)`` on the caller's transaction."""
        ...

    def factor_given_back(self, counters: FactorCounters, *, admission: Admission) -> None:
        """The admitted attempt's reservation deleted on the caller's transaction (it was
        neither a failure nor a success)."""
        ...


class NoRegulation:
    """Admits everything, counts nothing, holds no bans."""

    def admit_password(self, *, username: str, ip: str, password: str | None = None
                       ) -> Admission:
        return ADMIT

    def record_password(self, *, admission: Admission, outcome: AttemptOutcome,
                        password: str, password_stamp: str = "") -> None:
        return None

    def admit_factor(self, *, username: str) -> Admission:
        return ADMIT

    def record_factor(self, *, admission: Admission, outcome: FactorOutcome,
                      meta: RequestMeta | None = None) -> None:
        return None

    def reserve_factor(self, counters: FactorCounters, *, username: str) -> Admission:
        return ADMIT

    def factor_refused(self, *, username: str, reason: str) -> None:
        return None

    def factor_succeeded(self, counters: FactorCounters, *, admission: Admission) -> None:
        return None

    def factor_given_back(self, counters: FactorCounters, *, admission: Admission) -> None:
        return None

    def active_bans(self) -> list[Ban]:
        return []

    def lift(self, target: str, *, operator: str, reason: str,
             meta: RequestMeta | None = None) -> list[str]:
        return []


def shown_subject(subject: str) -> str:
    """A ban subject as people see it (audit record, console, CLI): never even a keyed
    password hash."""
    return "pw:<password>" if subject.startswith("pw:") else subject
