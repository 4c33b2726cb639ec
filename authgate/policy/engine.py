"""The pure decision: a PolicySet, a Subject, a Resource and a time in; a Decision out.

Ordered rules, first match wins, deny when nothing matches (Authelia's model). No I/O, no
clock, no globals: the same inputs always give the same Decision, which is what makes the
policy tests and ``explain`` trustworthy. Rules are pre-filtered by host through a
:class:`RuleIndex` so a decision does not scan rules written for other applications.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from authgate.core.values import Level, Resource
from authgate.policy.paths import normalize_path, path_problem
from authgate.policy.values import (
    WOULD,
    Decision,
    IPAddress,
    PolicySet,
    Requirement,
    Rule,
    Subject,
    Verdict,
)

_CACHE_LIMIT = 4096  # hosts are attacker-chosen (Host header): keep the cache bounded

DEFAULT_DENY = Decision(
    Verdict.DENY, None, None, "default_deny", ("no rule matched: default deny",)
)


Check = Callable[[Rule, "Request"], bool]


class RuleIndex:
    """Candidate rules for a request, in policy order, without scanning unrelated rules.

    Rules with ``domains`` are indexed by exact host and wildcard parent; rules without
    domains but whose every path regex starts with an anchored literal (``^/app/``) are
    indexed by that prefix; the rest are always candidates. A candidate has passed the
    domains criterion; the path prefix is only a pre-filter (the regex still runs). Each
    candidate comes with the checks its criteria need, so absent criteria cost nothing.

    Case-insensitive patterns (``(?i)^/Admin/``) with an ASCII literal prefix are indexed by
    that prefix in ASCII lower case (issue 20 item 4: they were scanned on every request).
    Under ``re.IGNORECASE`` some non-ASCII characters match ASCII letters (``ſ`` an ``s``,
    the Kelvin sign a ``k``, ``İ``/``ı`` an ``i``), so a path whose first characters are
    not all ASCII gets every case-insensitive rule as a candidate: never a skipped rule.
    """

    def __init__(self, rules: Sequence[Rule]) -> None:
        self._entries = tuple((rule, _checks(rule)) for rule in rules)
        self._exact: dict[str, list[int]] = {}
        self._wildcard: dict[str, list[int]] = {}
        self._prefixes: dict[str, list[int]] = {}
        self._folded: dict[str, list[int]] = {}  # (?i) prefixes, ASCII lower case
        self._anywhere: list[int] = []
        for pos, rule in enumerate(rules):
            for host in rule.exact_hosts:
                self._exact.setdefault(host, []).append(pos)
            for parent in rule.wildcard_parents:
                self._wildcard.setdefault(parent, []).append(pos)
            prefixes = _path_prefixes(rule) if not rule.domains else None
            if not rule.domains and prefixes is None:
                self._anywhere.append(pos)
            for prefix, folded in prefixes or ():
                (self._folded if folded else self._prefixes).setdefault(prefix, []).append(pos)
        self._lengths = sorted({len(prefix) for prefix in self._prefixes})
        self._folded_lengths = sorted({len(prefix) for prefix in self._folded})
        self._all_folded = sorted({pos for found in self._folded.values() for pos in found})
        self._cache: dict[str, tuple[int, ...]] = {}

    def candidates(self, host: str, path: str = "") -> list[tuple[Rule, tuple[Check, ...]]]:
        """(rule, checks) pairs in policy order that may match this host and path."""
        positions = self._cache.get(host)
        if positions is None:
            positions = self._host_positions(host)
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[host] = positions
        by_path = [
            pos
            for n in self._lengths
            if n <= len(path)
            for pos in self._prefixes.get(path[:n], ())
        ]
        if self._folded_lengths:
            by_path += self._by_folded_prefix(path)
        if by_path:
            positions = tuple(sorted({*positions, *by_path}))
        entries = self._entries
        return [entries[pos] for pos in positions]

    def _by_folded_prefix(self, path: str) -> list[int]:
        head = path[:self._folded_lengths[-1]]
        if not head.isascii():  # a character IGNORECASE may fold to ASCII: all of them
            return self._all_folded
        head = head.lower()
        return [pos for n in self._folded_lengths if n <= len(head)
                for pos in self._folded.get(head[:n], ())]

    def _host_positions(self, host: str) -> tuple[int, ...]:
        positions = set(self._anywhere)
        positions.update(self._exact.get(host, ()))
        labels = host.split(".")
        for i in range(1, len(labels)):  # proper parents only: *.x never matches bare x
            positions.update(self._wildcard.get(".".join(labels[i:]), ()))
        return tuple(sorted(positions))


def _checks(rule: Rule) -> tuple[Check, ...]:
    """The predicates a rule needs beyond domains (applied by the index) and subjects."""
    wanted = (
        (rule.methods is not None, match_methods),
        (bool(rule.paths), match_paths),
        (rule.networks is not None, match_networks),
        (rule.hours is not None, match_hours),
    )
    return tuple(check for present, check in wanted if present)


def _path_prefixes(rule: Rule) -> set[tuple[str, bool]] | None:
    """(literal prefix, case-insensitive) for every path regex of the rule, or None if any
    has none. A case-insensitive prefix is given in ASCII lower case (ASCII only)."""
    if not rule.paths or rule.match_query:
        return None
    found: set[tuple[str, bool]] = set()
    for pattern in rule.paths:
        folded = bool(pattern.flags & re.IGNORECASE)
        prefix = literal_prefix(pattern, ignore_case=folded)
        if prefix is None or (folded and not prefix.isascii()):
            return None
        found.add((prefix.lower() if folded else prefix, folded))
    return found


def literal_prefix(pattern: re.Pattern[str], *, ignore_case: bool = False) -> str | None:
    """The literal text a regex must start with (``^/app/x`` → ``/app/x``), None if unsure.
    A case-insensitive pattern has one only when ``ignore_case`` (the caller folds it)."""
    if pattern.flags & (re.MULTILINE | re.VERBOSE) or \
            (pattern.flags & re.IGNORECASE and not ignore_case):
        return None
    try:  # the stdlib regex parser; private, so any surprise just disables the index
        from re import _constants, _parser  # type: ignore[attr-defined]

        items = list(_parser.parse(pattern.pattern, pattern.flags))
        if not items or items[0] not in (
            (_constants.AT, _constants.AT_BEGINNING),
            (_constants.AT, _constants.AT_BEGINNING_STRING),
        ):
            return None
        prefix = []
        for op, arg in items[1:]:
            if op is not _constants.LITERAL:
                break
            prefix.append(chr(arg))
    except Exception:  # noqa: BLE001 - fail towards scanning, never towards skipping a rule
        return None
    return "".join(prefix) or None


class Request:
    """Per-decision view of the inputs, normalised once: host, path, groups, local times."""

    __slots__ = (
        "host",
        "path",
        "path_query",
        "method",
        "ip",
        "now",
        "user",
        "groups",
        "anonymous",
        "_local",
    )

    def __init__(self, subject: Subject, resource: Resource, now: datetime) -> None:
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware (UTC)")
        self.host = resource.host.lower().rstrip(".")
        self.path = normalize_path(resource.path)
        self.path_query = f"{self.path}?{resource.query}" if resource.query else self.path
        self.method = resource.method.upper()
        ip = subject.ip
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        self.ip: IPAddress | None = ip
        self.now = now
        self.anonymous = subject.username is None
        self.user = subject.username.casefold() if subject.username else None
        self.groups = frozenset(group.casefold() for group in subject.groups)
        self._local: dict[str, datetime] = {}

    def local(self, tz_key: str, rule_tz: object) -> datetime:
        when = self._local.get(tz_key)
        if when is None:
            when = self._local[tz_key] = self.now.astimezone(rule_tz)  # type: ignore[arg-type]
        return when


# Criterion predicates. Shared by decide() and explain() so both always agree.


def match_domains(rule: Rule, req: Request) -> bool:
    if not rule.domains or req.host in rule.exact_hosts:
        return True
    return any(req.host.endswith("." + parent) for parent in rule.wildcard_parents)


def match_paths(rule: Rule, req: Request) -> bool:
    if not rule.paths:
        return True
    target = req.path_query if rule.match_query else req.path
    for pattern in rule.paths:
        if pattern.search(target):
            return True
    return False


def match_methods(rule: Rule, req: Request) -> bool:
    return rule.methods is None or req.method in rule.methods


def match_networks(rule: Rule, req: Request) -> bool:
    if rule.networks is None:
        return True
    ip = req.ip
    return ip is not None and any(ip in net for net in rule.networks)


def match_hours(rule: Rule, req: Request) -> bool:
    if rule.hours is None:
        return True
    for window in rule.hours:
        local = req.local(window.tz.key, window.tz)
        minute, day = local.hour * 60 + local.minute, local.weekday()
        if window.start < window.end:
            if day in window.days and window.start <= minute < window.end:
                return True
        elif (day in window.days and minute >= window.start) or (
            (day - 1) % 7 in window.days and minute < window.end
        ):
            return True
    return False


def match_subjects(rule: Rule, req: Request) -> bool:
    """OR of AND clauses; call only for a known (non-anonymous) subject."""
    if rule.subjects is None:
        return True
    for clause in rule.subjects:
        if all(
            (req.user == name) if kind == "user" else (name in req.groups) for kind, name in clause
        ):
            return True
    return False


def ambiguous(problem: str) -> Decision:
    """Refused before any rule: some back end could serve the path as another one
    (``authgate.policy.paths``; CWE-436, ASVS 4.1.3)."""
    return Decision(Verdict.DENY, None, None, "ambiguous_path",
                    (f"refused before any rule: the path has {problem}",))


def decide(ps: PolicySet, *, subject: Subject, resource: Resource, now: datetime) -> Decision:
    """First matching rule wins; nothing matched → deny. Raises ValueError on a naive ``now``.

    A matching report-only rule is evaluated like any other, its would-be verdict noted on
    the Decision, and the walk goes on: it never changes what decides (issue 19 item 3)."""
    problem = path_problem(resource.path)
    if problem is not None:
        return ambiguous(problem)
    req = Request(subject, resource, now)
    reported: tuple[tuple[str, str], ...] = ()
    for rule, checks in ps.index.candidates(req.host, req.path):
        for check in checks:  # a plain loop: this is the hot path of every request
            if not check(rule, req):
                break
        else:
            if rule.subjects is None:
                decision = outcome(ps, rule, subject, now)
            elif req.anonymous:
                decision = login_required_for_subjects(rule)
            elif match_subjects(rule, req):
                decision = outcome(ps, rule, subject, now)
            else:
                continue
            if rule.report_only:
                reported += ((rule.id, WOULD[decision.verdict]),)
                continue
            return replace(decision, report_only=reported) if reported else decision
    return replace(DEFAULT_DENY, report_only=reported) if reported else DEFAULT_DENY


def login_required_for_subjects(rule: Rule) -> Decision:
    """An anonymous subject reached a rule that names users or groups: we must know who it is
    before allowing *or* denying, so ask for a login at the rule's level (password at least)."""
    level = rule.level.level
    required = level if level is not None and level.rank >= Level.PASSWORD.rank else Level.PASSWORD
    lines = (
        f"rule {rule.id} ({rule.source}) names subjects; the request is anonymous",
        f"log in (at least {required.value}) to evaluate it",
    )
    return Decision(Verdict.AUTHENTICATE, required, rule.id, "login_required", lines)


def effective_limits(ps: PolicySet, rule: Rule, level: Level) -> tuple[timedelta, timedelta]:
    """The rule's own max age / idle timeout, else the global cap for its level."""
    cap = ps.settings.sessions.caps[level]
    return rule.max_session_age or cap.max_age, rule.idle_timeout or cap.idle_timeout


def outcome(ps: PolicySet, rule: Rule, subject: Subject, now: datetime) -> Decision:
    """Apply a matched rule's outcome to the subject's session."""
    head = f"rule {rule.id} ({rule.source}) matched"
    if rule.level is Requirement.BYPASS:
        return Decision(
            Verdict.ALLOW, Level.NONE, rule.id, "bypass", (head, "bypass: no login needed")
        )
    if rule.level is Requirement.DENY:
        return Decision(
            Verdict.DENY, None, rule.id, "denied_by_rule", (head, "the rule denies access")
        )
    required = rule.level.level
    assert required is not None
    max_age, idle = effective_limits(ps, rule, required)

    def answer(verdict: Verdict, reason: str, line: str) -> Decision:
        return Decision(verdict, required, rule.id, reason, (head, line), max_age, idle)

    if subject.username is None or subject.level is Level.NONE:
        return answer(
            Verdict.AUTHENTICATE, "login_required", f"requires {required.value}; not logged in"
        )
    if subject.auth_time is None or now - subject.auth_time > max_age:
        return answer(
            Verdict.AUTHENTICATE, "reauth_age", f"session older than max_session_age {max_age}"
        )
    if subject.last_seen is None or now - subject.last_seen > idle:
        return answer(
            Verdict.AUTHENTICATE, "reauth_idle", f"session idle longer than idle_timeout {idle}"
        )
    if not subject.level.satisfies(required):
        return answer(
            Verdict.AUTHENTICATE,
            "step_up",
            f"requires {required.value}; session holds {subject.level.value}",
        )
    return answer(
        Verdict.ALLOW, "allowed", f"requires {required.value}; session holds {subject.level.value}"
    )
