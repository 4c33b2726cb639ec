"""Values exchanged between the regulation use case and its store.

They live here, below ``authgate.regulation``, so that the SQL store imports nothing above
storage: the store reads counters under its row locks into a snapshot, asks the rules
(``RegulationRules`` in ``storage.interfaces``, implemented by ``regulation.rules``) what to
do, and applies the answer before it lets go of the locks (ASVS 2.2.1: check and reservation
are one atomic step). Subjects are strings such as ``user:alice``, ``userip:alice|10.0.0.7``,
``ip:203.0.113.9``, ``pw:<hmac>``, ``factor:alice``.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

# -- retention: how long the store remembers (docs/regulation.md) -------------------------------
#: A new ban within this long after the previous one escalates.
ESCALATION_MEMORY = timedelta(hours=24)
#: An IP stays familiar for this long after the user's last success from it.
FAMILIAR_TTL = timedelta(days=90)
#: Failed-password keyed hashes are kept for the window, at most this many per user.
PASSWORD_MEMORY = 5


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
class FailureCounts:
    """What the store read under the locks after counting one failed password."""

    familiar: bool
    bucket: str  # the subject of the account's counter (per familiar IP or not)
    bucket_failures: int
    ip: str  # the IP's subject
    ip_failures: int
    ip_users: int  # distinct account names tried from the IP in the window
    password: str  # the password's subject (its keyed hash)
    sprayed_users: int  # distinct accounts this password failed for in the window
    repeat: bool  # already failed for this account: counted once, no ban


@dataclass(frozen=True)
class FactorCounts:
    """What the store read under the second-factor subject's lock."""

    subject: str
    banned: bool
    failures: int  # in the policy window, in-flight attempts included


@dataclass(frozen=True)
class BanOrder:
    """A ban the rules ask the store to start (or escalate) on ``subject``."""

    subject: str
    reason: str


@dataclass(frozen=True)
class PriorBan:
    """The subject's last ban as stored: the rules decide whether a new one escalates."""

    level: int
    banned_at: datetime | None


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


@dataclass(frozen=True)
class VerifierRow:
    """The stored verifier of the last password AD accepted for ``username`` (never the
    password): an argon2id string, the ``pwdLastSet`` stamp it was accepted under, and a
    6-bit keyed prefilter (None on rows written before migration 0008)."""

    username: str
    verifier: str
    password_stamp: str
    set_at: datetime
    prefilter: int | None = None
