"""Brute-force and password-spray regulation: the contract the login flow calls.

The ban check runs **before** the directory bind (Authelia's rule), so a banned source never
costs the user an Active Directory bad-password count. ``NoRegulation`` is the null object
used where regulation is not wanted (unit tests of other layers); never an ``if enabled:``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Admission:
    allowed: bool
    reason: str = ""  # for the audit record only: user_banned, ip_banned, spray_source, ...


ADMIT = Admission(True)


class Regulator(Protocol):
    def admit_password(self, *, username: str, ip: str, password: str | None = None
                       ) -> Admission:
        """May this attempt reach the directory? Called before the bind. With ``password``
        (reduced to a keyed hash at once) a repeat of a recent wrong password and a sprayed
        password are refused before they cost the account an AD bad-password count."""
        ...

    def record_password(self, *, username: str, ip: str, password: str, success: bool,
                        reason: str) -> None:
        """Count the outcome. ``password`` is only ever reduced to a keyed hash."""
        ...

    def admit_factor(self, *, username: str) -> Admission:
        """Second-factor attempts are throttled per user, apart from passwords."""
        ...

    def record_factor(self, *, username: str, success: bool) -> None: ...


class NoRegulation:
    def admit_password(self, *, username: str, ip: str, password: str | None = None
                       ) -> Admission:
        return ADMIT

    def record_password(self, *, username: str, ip: str, password: str, success: bool,
                        reason: str) -> None:
        return None

    def admit_factor(self, *, username: str) -> Admission:
        return ADMIT

    def record_factor(self, *, username: str, success: bool) -> None:
        return None
