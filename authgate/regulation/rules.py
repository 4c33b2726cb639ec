"""The regulation rules as pure functions: what to refuse, which bans a failure starts, and
how a ban escalates. No I/O: the store reads a snapshot under its row locks, asks these, and
applies the answer before it lets go (so 50 parallel attempts cannot slip past a threshold of
5, ASVS 2.2.1). ``PolicyRules`` binds them to one policy snapshot's ``Limits`` for the store.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from authgate.regulation.limits import Limits
from authgate.storage.regulation_rows import (
    ESCALATION_MEMORY,
    Ban,
    BanOrder,
    FactorCounts,
    FailureCounts,
    PriorBan,
    Snapshot,
)

AD_GUARD = "ad_lockout_guard"


#: what an attacker's guesses at one account start (``escalations``): they slow guessing
#: at that account, so a password proven right (``judge(vouched=True)``) is not held by them
USER_LIMITS = frozenset({"user_banned", "user_ip_banned", "user_throttled"})


def judge(s: Snapshot, limits: Limits, *, ad_guard: bool = True,
          vouched: bool = False) -> str:
    """The reason to refuse, or "" to admit. Order: bans, policy counters, the AD guard.

    ``vouched`` (with ``ad_guard=False``) only for an attempt that matched the verifier of
    the password AD last accepted, under an unchanged ``pwdLastSet`` (``regulation.
    verifier``): AD will accept it, so it cannot raise badPwdCount, and it is no guess, so
    the account's own bans and throttle (``USER_LIMITS``), which exist to slow guesses at
    it, do not hold it either (the outside test of issue 15: after the rightful user's own
    success reset AD's count, a second guess banned her name from every new address).
    Bans on the address or on a sprayed password still apply."""
    for ban in s.bans:
        if vouched and ban.reason in USER_LIMITS:
            continue
        return ban.reason
    if s.repeat and not vouched:  # known wrong: AD would count it again, nothing learnt
        return "repeated_password"
    if s.bucket_failures >= limits.per_user and not vouched:
        return "user_throttled"
    if s.ip_failures >= limits.per_ip:
        return "ip_throttled"
    ad = limits.ad
    if ad is not None and ad_guard:
        if s.chain >= ad.total:
            return AD_GUARD
        if not s.familiar and s.chain_unfamiliar >= ad.unfamiliar_limit(
                has_familiar=s.has_familiar):
            return AD_GUARD
    return ""


def escalations(c: FailureCounts, limits: Limits) -> tuple[BanOrder, ...]:
    """The bans one counted failure starts, in lock order (bucket, IP, password).

    A repeat starts none (it was counted once already). The account's bucket is banned at
    the per-user limit. The IP gets at most one ban, the most telling first: it tried many
    accounts (``spray_source``), it used a password that failed for many accounts
    (``password_spray``), or it reached the per-IP limit. A sprayed password is banned too,
    whichever IP sent it."""
    if c.repeat:
        return ()
    orders: list[BanOrder] = []
    if c.bucket_failures >= limits.per_user:
        orders.append(BanOrder(c.bucket, "user_ip_banned" if c.familiar else "user_banned"))
    sprayed = c.sprayed_users >= limits.spray_users
    if c.ip_users >= limits.spray_users:
        orders.append(BanOrder(c.ip, "spray_source"))
    elif sprayed:
        orders.append(BanOrder(c.ip, "password_spray"))
    elif c.ip_failures >= limits.per_ip:
        orders.append(BanOrder(c.ip, "ip_banned"))
    if sprayed:
        orders.append(BanOrder(c.password, "password_spray"))
    return tuple(orders)


def judge_factor(c: FactorCounts, limits: Limits) -> str:
    """Second factors: a ban, then the per-user failure limit."""
    if c.banned:
        return "factor_banned"
    if c.failures >= limits.factor_failures:
        return "factor_throttled"
    return ""


def factor_escalations(c: FactorCounts, limits: Limits) -> tuple[BanOrder, ...]:
    if c.failures >= limits.factor_failures:
        return (BanOrder(c.subject, "factor_banned"),)
    return ()


def escalate(order: BanOrder, *, prior: PriorBan, limits: Limits, now: datetime) -> Ban:
    """A ban within ESCALATION_MEMORY of the subject's previous one is one level longer
    (``ban_time * escalation ** level``, capped); otherwise it starts again at level 0."""
    recent = prior.banned_at is not None and now - prior.banned_at < ESCALATION_MEMORY
    level = prior.level + 1 if recent else 0
    return Ban(order.subject, order.reason, now + limits.ban_duration(level), level)


@dataclass(frozen=True)
class PolicyRules:
    """The ``RegulationRules`` the store asks: these functions over one ``Limits``."""

    limits: Limits
    #: False for an attempt vouched for by the password verifier (see ``judge``).
    ad_guard: bool = True
    vouched: bool = False

    @property
    def window(self) -> timedelta:
        return self.limits.window

    @property
    def chain_window(self) -> timedelta | None:
        return self.limits.ad.window if self.limits.ad is not None else None

    def judge(self, snapshot: Snapshot) -> str:
        return judge(snapshot, self.limits, ad_guard=self.ad_guard, vouched=self.vouched)

    def escalations(self, counts: FailureCounts) -> tuple[BanOrder, ...]:
        return escalations(counts, self.limits)

    def judge_factor(self, counts: FactorCounts) -> str:
        return judge_factor(counts, self.limits)

    def factor_escalations(self, counts: FactorCounts) -> tuple[BanOrder, ...]:
        return factor_escalations(counts, self.limits)

    def ban(self, order: BanOrder, *, prior: PriorBan, now: datetime) -> Ban:
        return escalate(order, prior=prior, limits=self.limits, now=now)
