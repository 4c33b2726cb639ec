"""Values exchanged between the regulation use case and its store, and the pure admission
judgement the store applies while it holds the account's lock row (so check and reservation
are one atomic step: 50 parallel attempts cannot slip past a threshold of 5, ASVS 2.2.1)."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from authgate.regulation.limits import Limits


def user_subject(username: str) -> str:
    return f"user:{username}"


def familiar_subject(username: str, ip: str) -> str:
    return f"userip:{username}|{ip}"


def ip_key(ip: str) -> str:
    return f"ip:{ip}"


def password_subject(mac: str) -> str:
    return f"pw:{mac}"


def factor_subject(username: str) -> str:
    return f"factor:{username}"


@dataclass(frozen=True)
class Ban:
    subject: str
    reason: str
    until: datetime
    level: int


@dataclass(frozen=True)
class Snapshot:
    """What the store read under the account's lock for one password attempt."""

    familiar: bool
    has_familiar: bool
    bans: tuple[Ban, ...]  # active bans on the bucket, the IP or the password
    bucket_failures: int  # in the policy window, in-flight attempts included
    ip_failures: int
    chain: int  # AD failure chain mirror, already reset if it expired
    chain_unfamiliar: int
    repeat: bool = False  # this password already failed for this account in the window


@dataclass(frozen=True)
class Reservation:
    """An admitted attempt: its events are counted until the outcome settles them."""

    attempt: str
    username: str
    ip: str
    familiar: bool
    chained: bool  # holds a slot of the AD budget


@dataclass(frozen=True)
class Verdict:
    reason: str  # "" when admitted
    reservation: Reservation | None = None

    @property
    def allowed(self) -> bool:
        return not self.reason


@dataclass(frozen=True)
class Settlement:
    """What recording a failure changed: was it a repeat, which bans it started."""

    repeat: bool
    bans: tuple[Ban, ...] = ()


def judge(s: Snapshot, limits: Limits) -> str:
    """The reason to refuse, or "" to admit. Order: bans, policy counters, the AD guard."""
    for ban in s.bans:
        return ban.reason
    if s.repeat:  # already known wrong: AD would count it again, authgate learns nothing
        return "repeated_password"
    if s.bucket_failures >= limits.per_user:
        return "user_throttled"
    if s.ip_failures >= limits.per_ip:
        return "ip_throttled"
    ad = limits.ad
    if ad is not None:
        if s.chain >= ad.total:
            return "ad_lockout_guard"
        if not s.familiar and s.chain_unfamiliar >= ad.unfamiliar_limit(
                has_familiar=s.has_familiar):
            return "ad_lockout_guard"
    return ""


class RegulationStore(Protocol):
    """Atomic counters shared by every authgate instance (SQLite or PostgreSQL)."""

    def admit(self, *, attempt: str, username: str, ip: str, password_mac: str | None,
              limits: Limits, now: datetime) -> Verdict: ...

    def settle_failure(self, r: Reservation, *, password_mac: str, bind_reached: bool,
                       limits: Limits, now: datetime) -> Settlement: ...

    def settle_success(self, r: Reservation, *, now: datetime) -> None: ...

    def settle_neutral(self, r: Reservation, *, keep_ad_slot: bool, now: datetime
                       ) -> None: ...

    def admit_factor(self, *, attempt: str, username: str, limits: Limits,
                     now: datetime) -> str: ...

    def settle_factor(self, *, attempt: str, username: str, success: bool, limits: Limits,
                      now: datetime) -> Ban | None: ...

    def active_bans(self, now: datetime) -> list[Ban]: ...

    def lift(self, subjects: Sequence[str], *, prefixes: Sequence[str] = ()) -> list[str]: ...

    def purge(self, now: datetime, horizon: datetime) -> int: ...
