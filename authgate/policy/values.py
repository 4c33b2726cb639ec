"""The policy engine's values: what goes in (Subject), what comes out (Decision), and the
compiled rules a loaded PolicySet holds.

Everything is frozen: a PolicySet is shared by every request thread and swapped whole on
reload, so nothing in it may change after load.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from authgate.core.values import Level
from authgate.policy.globals import IPAddress, IPNetwork, PolicyGlobals

__all__ = ["IPAddress", "IPNetwork"]  # re-exported: rules and requests speak of them too


class Requirement(str, Enum):  # noqa: UP042 - str values in YAML, JSON and audit
    """A rule's outcome: which proof of identity it demands, or bypass / deny."""

    BYPASS = "bypass"
    PASSWORD = "password"  # noqa: S105 - a level name, not a secret
    MFA = "mfa"
    PHISHING_RESISTANT = "phishing_resistant"
    DENY = "deny"

    @property
    def level(self) -> Level | None:
        """The session level needed; Level.NONE for bypass, None for deny (nothing suffices)."""
        return _REQUIRED_LEVEL[self]


_REQUIRED_LEVEL: dict[Requirement, Level | None] = {
    Requirement.BYPASS: Level.NONE,
    Requirement.PASSWORD: Level.PASSWORD,
    Requirement.MFA: Level.MFA,
    Requirement.PHISHING_RESISTANT: Level.PHISHING_RESISTANT,
    Requirement.DENY: None,
}


class Verdict(str, Enum):  # noqa: UP042 - str values in JSON and audit
    """What the forward-auth endpoint answers: 200, 401 (log in / step up) or 403."""

    ALLOW = "allow"
    AUTHENTICATE = "authenticate"
    DENY = "deny"


#: what a report-only rule would have answered (issue 19 item 3), as written in the
#: ``verify`` audit record: catalogued as reason codes in ``authgate.audit.catalog``
WOULD: dict[Verdict, str] = {
    Verdict.ALLOW: "would_allow",
    Verdict.AUTHENTICATE: "would_step_up",
    Verdict.DENY: "would_deny",
}


@dataclass(frozen=True)
class Subject:
    """Who is asking, as the session layer knows it. ``username=None`` means anonymous.

    ``auth_time`` is when the *current* level was last proven; ``last_seen`` is the previous
    activity (read it before touching the session, or idle timeouts never fire).
    """

    username: str | None = None
    groups: frozenset[str] = frozenset()
    level: Level = Level.NONE
    auth_time: datetime | None = None
    last_seen: datetime | None = None
    ip: IPAddress | None = None

    @property
    def anonymous(self) -> bool:
        return self.username is None


@dataclass(frozen=True)
class Decision:
    """The engine's answer. ``reason`` is a stable code for audit and the login page;
    ``reasons`` are human lines for explain and logs (never shown to end users verbatim).
    ``report_only`` lists, in policy order, each report-only rule that matched before the
    deciding one, with what it would have answered (``WOULD``); it never changes the rest."""

    verdict: Verdict
    required: Level | None
    rule_id: str | None
    reason: str
    reasons: tuple[str, ...] = ()
    max_session_age: timedelta | None = None
    idle_timeout: timedelta | None = None
    report_only: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class HoursWindow:
    """Days and a local time range in a named zone. ``end`` ≤ ``start`` means overnight:
    the window opens on a listed day and closes the next morning."""

    days: frozenset[int]  # 0 = Monday, as datetime.weekday()
    start: int  # minutes after local midnight
    end: int  # minutes after local midnight, 1440 = 24:00
    tz: ZoneInfo
    text: str  # as written, for explain


@dataclass(frozen=True)
class Rule:
    """One compiled rule. ``None`` criteria match everything (an omitted key).
    ``report_only`` (``mode: report_only``): evaluated and recorded, never deciding."""

    id: str
    position: int
    source: str  # "file:line"
    description: str
    level: Requirement
    domains: tuple[str, ...] = ()  # lower-case, as written
    exact_hosts: frozenset[str] = frozenset()
    wildcard_parents: tuple[str, ...] = ()  # "city.test" for "*.city.test"
    paths: tuple[re.Pattern[str], ...] = ()
    match_query: bool = False
    methods: frozenset[str] | None = None
    subjects: tuple[frozenset[tuple[str, str]], ...] | None = None  # OR of AND clauses
    networks: tuple[IPNetwork, ...] | None = None
    network_names: tuple[str, ...] = ()  # as written (names and CIDRs)
    hours: tuple[HoursWindow, ...] | None = None
    max_session_age: timedelta | None = None
    idle_timeout: timedelta | None = None
    report_only: bool = False

    @property
    def has_subjects(self) -> bool:
        return self.subjects is not None


class RuleCandidates(Protocol):
    """What the engine asks of a policy set's index (``policy.engine.RuleIndex``): the rules
    that may match a host and path, in policy order, each with the checks it needs."""

    def candidates(self, host: str, path: str = ""
                   ) -> list[tuple[Rule, tuple[Callable[[Rule, Any], bool], ...]]]: ...


@dataclass(frozen=True)
class PolicySet:
    """A loaded, validated policy: rules in order, global settings, and the digest a
    reviewer approved. Swap it whole; never mutate it."""

    rules: tuple[Rule, ...]
    settings: PolicyGlobals
    digest: str
    warnings: tuple[str, ...]
    files: tuple[str, ...]
    index: RuleCandidates
    #: each file's name and the very bytes parsed (the digest's input): the admin console
    #: diffs a pending change against the set in force with them (issue 19 item 4)
    sources: tuple[tuple[str, bytes], ...] = ()

    def rule(self, rule_id: str) -> Rule | None:
        """The rule with this id, if any."""
        return next((rule for rule in self.rules if rule.id == rule_id), None)
