"""Replay many audited decisions fast (issue 19: 100k decisions/s with 2 jobs): the
engine is pure, so two records whose inputs it cannot tell apart get the same Decision, and
a replay decides each distinct set of inputs once.

What ``decide`` reads of a record (``policy.engine``): the host, path, method and (for
``match_query`` rules) query; the user only where a rule names ``user:``; of the groups only
those rules name; of the client address only which rule networks hold it; of the time only
the minute (``hours`` windows are whole minutes) and only when a rule has hours; of the
session's ages only which ``max_session_age`` / ``idle_timeout`` limits (rules' and the
caps') they exceed; the level; whether it is anonymous. The key is exactly that, so a cached
Decision is the one ``decide`` would return (tests/policy/test_preview_speed.py compares
them on random records).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Hashable
from datetime import datetime, timedelta
from ipaddress import IPv6Address

from authgate.core.values import Resource
from authgate.policy.audited import AuditedDecision
from authgate.policy.engine import Request, decide, match_hours
from authgate.policy.values import Decision, IPAddress, IPNetwork, PolicySet, Subject

#: distinct inputs kept per job; beyond it the cache starts again (memory stays flat)
LIMIT = 100_000
_PROBE = Resource("https", "probe.invalid", "/", "GET")


class DecisionCache:
    """``decide`` for audited decisions, once per distinct key (one per job: not shared)."""

    def __init__(self, ps: PolicySet, *, limit: int = LIMIT) -> None:
        self._ps = ps
        self._limit = limit
        rules = ps.rules
        self._users = {name for r in rules for clause in r.subjects or ()
                       for kind, name in clause if kind == "user"}
        self._groups = frozenset(name for r in rules for clause in r.subjects or ()
                                 for kind, name in clause if kind == "group")
        self._networks: tuple[IPNetwork, ...] = tuple(
            dict.fromkeys(net for r in rules for net in r.networks or ()))
        self._hour_rules = tuple(r for r in rules if r.hours is not None)
        self._minutes: dict[datetime, tuple[bool, ...]] = {}
        self._query = any(r.match_query for r in rules)
        caps = ps.settings.sessions.caps.values()
        self._ages = sorted({r.max_session_age for r in rules if r.max_session_age}
                            | {c.max_age for c in caps})
        self._idles = sorted({r.idle_timeout for r in rules if r.idle_timeout}
                             | {c.idle_timeout for c in caps})
        self._decisions: dict[Hashable, Decision] = {}
        #: each distinct hours or network vector once (they are few; minutes and addresses
        #: are many): the caches hold references, not copies
        self._shared: dict[tuple[bool, ...], tuple[bool, ...]] = {}
        self._group_keys: dict[frozenset[str], frozenset[str]] = {}
        self._ip_keys: dict[IPAddress | None, tuple[bool, ...]] = {}
        self.hits = self.misses = 0

    def decide(self, d: AuditedDecision) -> Decision:
        key = self._key(d)
        decision = self._decisions.get(key)
        if decision is not None:
            self.hits += 1
            return decision
        self.misses += 1
        if len(self._decisions) >= self._limit:
            self._decisions.clear()
        subject, resource = subject_and_resource(d)
        decision = self._decisions[key] = decide(self._ps, subject=subject, resource=resource,
                                                 now=d.at)
        return decision

    def _key(self, d: AuditedDecision) -> Hashable:
        user = d.user
        if user is not None:
            folded = user.casefold()
            user = folded if folded in self._users else ""
        return (d.host, d.path, d.method, d.query if self._query else "", user,
                self._group_key(d.groups), d.level, self._ip_key(d.ip),
                self._hours_key(d.at) if self._hour_rules else None,
                _rank(d.auth_age, self._ages), _rank(d.idle, self._idles))

    def _hours_key(self, at: datetime) -> tuple[bool, ...]:
        """Which rules' ``hours`` hold at this minute (the engine's own ``match_hours``)."""
        minute = at.replace(second=0, microsecond=0)
        key = self._minutes.get(minute)
        if key is None:
            if len(self._minutes) >= self._limit // 10:
                self._minutes.clear()
            probe = Request(Subject(), _PROBE, minute)
            vector = tuple(match_hours(rule, probe) for rule in self._hour_rules)
            key = self._minutes[minute] = self._share(vector)
        return key

    def _share(self, vector: tuple[bool, ...]) -> tuple[bool, ...]:
        if len(self._shared) >= self._limit:
            self._shared.clear()
        return self._shared.setdefault(vector, vector)

    def _group_key(self, groups: frozenset[str]) -> frozenset[str]:
        key = self._group_keys.get(groups)
        if key is None:
            if len(self._group_keys) >= self._limit:
                self._group_keys.clear()
            key = self._group_keys[groups] = frozenset(
                g.casefold() for g in groups) & self._groups
        return key

    def _ip_key(self, ip: IPAddress | None) -> tuple[bool, ...]:
        key = self._ip_keys.get(ip)
        if key is None:
            if len(self._ip_keys) >= self._limit // 2:
                self._ip_keys.clear()
            probe = ip.ipv4_mapped or ip if isinstance(ip, IPv6Address) else ip
            vector = (probe is None,) + tuple(
                probe is not None and probe in net for net in self._networks)
            key = self._ip_keys[ip] = self._share(vector)
        return key


def subject_and_resource(d: AuditedDecision) -> tuple[Subject, Resource]:
    """The engine's inputs for an audited decision, its ages turned back into times."""
    subject = Subject(
        username=d.user, groups=d.groups, level=d.level, ip=d.ip,
        auth_time=d.at - d.auth_age if d.auth_age is not None else None,
        last_seen=d.at - d.idle if d.idle is not None else None)
    return subject, Resource("https", d.host, d.path, d.method, d.query)


def _rank(age: timedelta | None, limits: list[timedelta]) -> int:
    """How many of the sorted ``limits`` ``age`` exceeds (-1: unknown, always too old)."""
    return -1 if age is None else bisect_left(limits, age)
