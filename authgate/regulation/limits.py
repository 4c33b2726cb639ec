"""Thresholds and the Active Directory lockout arithmetic (pure: no I/O, no storage).

authgate is a lever on AD: every failed bind it forwards raises the account's ``badPwdCount``,
and AD locks the account when that count reaches ``lockoutThreshold`` T. AD resets the count
to 0 on a successful logon, and restarts it at 1 when a failure comes more than
``lockOutObservationWindow`` after the previous one (``badPasswordTime``, MS-ADTS 3.1.1.5.3
and MS-SAMR 3.1.1.5): it is a *chain* of failures each within the window of the previous one,
not a sliding window. authgate therefore mirrors that chain per account and never forwards a
bind that could make it reach T: at most ``B = T - 1`` failed binds per chain, of which
unfamiliar IPs may use ``B - R``; ``R`` stays reserved for the user's familiar IPs (smart
lockout). ASVS 2.2.1, NIST SP 800-63B 5.2.2 (rate limiting that does not lock users out).
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from authgate.storage.regulation_rows import ESCALATION_MEMORY, FAMILIAR_TTL, PASSWORD_MEMORY

#: Added to AD's observation window: authgate stamps the chain before the bind and the DC's
#: clock may differ from ours, so authgate forgets a chain strictly later than AD does.
CHAIN_SLACK = timedelta(minutes=2)
#: A ban never lasts longer than this, however often it escalated.
MAX_BAN = timedelta(hours=24)
#: ESCALATION_MEMORY, FAMILIAR_TTL and PASSWORD_MEMORY say how long the store remembers:
#: they live with the store's values (``storage.regulation_rows``).


@dataclass(frozen=True)
class AdBudget:
    """How many failed binds authgate may forward per AD failure chain.

    ``total`` = T - 1 (the T-th failure would lock); ``unfamiliar`` = total - reserve, the
    part any unfamiliar IP may use; the rest is kept for familiar IPs. A user who has no
    familiar IP yet may use the whole ``total`` from anywhere (nothing to reserve for).
    """

    threshold: int
    total: int
    unfamiliar: int
    window: timedelta  # AD's observation window plus CHAIN_SLACK

    def unfamiliar_limit(self, *, has_familiar: bool) -> int:
        return self.unfamiliar if has_familiar else self.total


def ad_budget(threshold: int, observation_window: timedelta) -> AdBudget | None:
    """None when AD never locks (threshold 0): authgate's own limits are then the only ones."""
    if threshold <= 0:
        return None
    total = threshold - 1
    reserve = max(1, total // 2) if total >= 2 else 0
    return AdBudget(threshold=threshold, total=total, unfamiliar=total - reserve,
                    window=observation_window + CHAIN_SLACK)


@dataclass(frozen=True)
class Limits:
    """One policy snapshot's thresholds plus the AD budget, read afresh for every attempt
    so that a policy reload or a changed domain policy applies at once."""

    per_user: int
    per_ip: int
    window: timedelta
    ban_time: timedelta
    escalation: float
    spray_users: int
    factor_failures: int
    ad: AdBudget | None = None

    @classmethod
    def from_policy(cls, regulation: Any, ad: AdBudget | None) -> Limits:
        r = regulation
        return cls(per_user=r.max_failures_per_user, per_ip=r.max_failures_per_ip,
                   window=r.window, ban_time=r.ban_time, escalation=float(r.ban_escalation),
                   spray_users=r.spray_distinct_users,
                   factor_failures=r.second_factor_max_failures, ad=ad)

    def ban_duration(self, level: int) -> timedelta:
        """``ban_time * escalation ** level``, capped at MAX_BAN (level 0 = first ban)."""
        seconds = self.ban_time.total_seconds() * self.escalation ** min(level, 64)
        return min(timedelta(seconds=min(seconds, MAX_BAN.total_seconds())), MAX_BAN)


@dataclass(frozen=True)
class LockoutMargin:
    """The start-up / ``check-config`` verdict: ``severity`` is ok, warning or error."""

    severity: str
    messages: tuple[str, ...]
    budget: AdBudget | None

    @property
    def ok(self) -> bool:
        return self.severity != "error"


def check_lockout_margin(policy_threshold: int, ad_threshold: int, *,
                         ad_window: timedelta, policy_window: timedelta) -> LockoutMargin:
    """Would authgate's per-user limit let AD lock the account first?

    Error when ``max_failures_per_user >= lockoutThreshold`` (the policy promises more
    failures than AD tolerates: the AD guard clamps it at run time, but the policy is wrong)
    or when T = 1 (any failed bind locks). Warning when unfamiliar IPs get fewer attempts
    than the policy says, or when no familiar reserve is possible (T = 2).
    """
    budget = ad_budget(ad_threshold, ad_window)
    if budget is None:
        return LockoutMargin("ok", ("AD account lockout is off (lockoutThreshold 0): "
                                    "authgate's limits are the only brute-force defence",),
                             None)
    errors: list[str] = []
    warnings: list[str] = []
    if budget.total == 0:
        errors.append("AD lockoutThreshold is 1: any failed bind locks the account, so "
                      "authgate refuses every password attempt; raise the domain threshold")
    if policy_threshold >= ad_threshold:
        errors.append(f"regulation.max_failures_per_user is {policy_threshold} but AD locks "
                      f"accounts at {ad_threshold} failures: set it to at most "
                      f"{budget.total} (authgate forwards at most {budget.total} failed binds "
                      f"per account per {_minutes(ad_window)} min chain regardless)")
    elif policy_threshold > budget.unfamiliar and budget.total > 0:
        warnings.append(f"unfamiliar IPs get {budget.unfamiliar} failed bind(s) per AD chain, "
                        f"fewer than max_failures_per_user {policy_threshold}: "
                        f"{budget.total - budget.unfamiliar} kept for familiar IPs")
    if budget.total == 1:
        warnings.append("AD lockoutThreshold is 2: no failure can be reserved for familiar "
                        "IPs, so an attacker can hold an account for one observation window")
    if policy_window < ad_window:
        warnings.append(f"regulation.window ({_minutes(policy_window)} min) is shorter than "
                        f"AD's observation window ({_minutes(ad_window)} min): the AD guard "
                        "still follows AD's window")
    severity = "error" if errors else "warning" if warnings else "ok"
    return LockoutMargin(severity, tuple(errors + warnings), budget)


__all__ = ["CHAIN_SLACK", "ESCALATION_MEMORY", "FAMILIAR_TTL", "MAX_BAN", "PASSWORD_MEMORY",
           "AdBudget", "Limits", "LockoutMargin", "ad_budget", "check_lockout_margin",
           "ip_subject"]


def _minutes(delta: timedelta) -> int:
    return int(delta.total_seconds() // 60)


def ip_subject(ip: str) -> str:
    """The address an IP counter is kept for: IPv4 as is, IPv6 by /64 (one subscriber
    holds a whole /64, so per-address counting would be no limit at all)."""
    try:
        addr = ipaddress.ip_address(ip.strip())
    except ValueError:
        return ip.strip()[:64] or "unknown"
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:
            return str(addr.ipv4_mapped)
        return str(ipaddress.ip_network(f"{addr}/64", strict=False))
    return str(addr)
