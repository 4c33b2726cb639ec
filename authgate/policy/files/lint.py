"""What a reviewer must see beyond syntax.

* Shadowed rules are **errors** (``shadowed_rules``): an earlier rule matches everything a
  later one does, so the later one can never apply. That is always a mistake, and a
  dangerous one: a stricter rule placed after a catch-all silently lowers the level (found by
  the pen test of issue #14, where a later ``mfa`` rule never ran). A report-only rule
  decides nothing, so it shadows nothing (it may itself be shadowed). The check is
  conservative (criterion by criterion, superset or equal); it never reports a rule that can
  match, and may miss exotic overlaps.
* Warnings (``lint_rules``): rules looser than NIST SP 800-63B re-authentication caps
  (4.2.3 AAL2: 12 h / 30 min idle; 4.3.3 AAL3: 12 h / 15 min idle; password treated like
  AAL2), ASVS 3.3.2.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from authgate.policy.globals import NIST_CAPS, PolicyGlobals
from authgate.policy.values import Rule


def shadowed_rules(rules: Sequence[Rule]) -> list[str]:
    """An error per rule that can never match, as ``file:line rule-id: message``."""
    shadows = _ShadowFinder(rules)
    return [f"{rule.source} {rule.id}: shadowed by earlier rule {earlier.id} "
            f"({earlier.source}); it can never match: move it before that rule or remove it"
            for rule in rules if (earlier := shadows.shadowing(rule)) is not None]


def lint_rules(rules: Sequence[Rule], settings: PolicyGlobals) -> list[str]:
    """Every warning for the rules, in rule order, as ``file:line rule-id: message``."""
    return [f"{rule.source} {rule.id}: {message}" for rule in rules
            for message in nist_problems(rule)]


def nist_problems(rule: Rule) -> list[str]:
    """Messages for a rule whose own max age or idle timeout exceeds its level's NIST cap."""
    level = rule.level.level
    if level is None or level not in NIST_CAPS:
        return []
    nist_age, nist_idle = NIST_CAPS[level]
    found = []
    if rule.max_session_age is not None and rule.max_session_age > nist_age:
        found.append(
            f"max_session_age {_fmt(rule.max_session_age)} exceeds the NIST SP 800-63B cap "
            f"{_fmt(nist_age)} for {level.value}"
        )
    if rule.idle_timeout is not None and rule.idle_timeout > nist_idle:
        found.append(
            f"idle_timeout {_fmt(rule.idle_timeout)} exceeds the NIST SP 800-63B cap "
            f"{_fmt(nist_idle)} for {level.value}"
        )
    return found


def _fmt(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes = rest // 60
    return f"{hours}h{minutes}m" if hours and minutes else (f"{hours}h" if hours else f"{minutes}m")


class _ShadowFinder:
    """Finds an earlier covering rule without comparing every pair: candidates are earlier
    rules that share the first domain (or have none) and the first path (or have none)."""

    def __init__(self, rules: Sequence[Rule]) -> None:
        self._rules = list(rules)
        self._by_host: dict[str, list[int]] = {}
        self._by_path: dict[str, list[int]] = {}
        self._no_domains: list[int] = []
        self._no_paths: list[int] = []
        for pos, rule in enumerate(self._rules):
            for domain in rule.domains:
                self._by_host.setdefault(domain, []).append(pos)
            for pattern in rule.paths:
                self._by_path.setdefault(pattern.pattern, []).append(pos)
            if not rule.domains:
                self._no_domains.append(pos)
            if not rule.paths:
                self._no_paths.append(pos)

    def shadowing(self, rule: Rule) -> Rule | None:
        for pos in self._candidates(rule):
            if pos >= rule.position:
                break
            if not self._rules[pos].report_only and covers(self._rules[pos], rule):
                return self._rules[pos]
        return None

    def _candidates(self, rule: Rule) -> list[int]:
        by_domain = list(self._no_domains)
        if rule.domains:
            first = rule.domains[0]
            by_domain += self._by_host.get(first, [])
            labels = first.removeprefix("*.").split(".")
            for i in range(1 if not first.startswith("*.") else 0, len(labels)):
                by_domain += self._by_host.get("*." + ".".join(labels[i:]), [])
        by_path = list(self._no_paths)
        if rule.paths:
            by_path += self._by_path.get(rule.paths[0].pattern, [])
        return sorted(set(by_domain if len(by_domain) <= len(by_path) else by_path))


def covers(a: Rule, b: Rule) -> bool:
    """True when every request ``b`` matches is matched by ``a`` (conservatively)."""
    return (
        _covers_domains(a, b)
        and _covers_paths(a, b)
        and _covers_set(a.methods, b.methods)
        and _covers_subjects(a, b)
        and _covers_networks(a, b)
        and (a.hours is None or (b.hours is not None and set(b.hours) <= set(a.hours)))
    )


def _covers_set(a: frozenset[str] | None, b: frozenset[str] | None) -> bool:
    return a is None or (b is not None and b <= a)


def _covers_domains(a: Rule, b: Rule) -> bool:
    if not a.domains:
        return True
    if not b.domains:
        return False
    for domain in b.domains:
        host = domain.removeprefix("*.")
        exact_hit = not domain.startswith("*.") and host in a.exact_hosts
        # *.x covers y.x, and *.x covers *.y.x; neither covers x itself.
        wild_hit = any(host.endswith("." + parent) for parent in a.wildcard_parents) or (
            domain.startswith("*.") and host in a.wildcard_parents
        )
        if not (exact_hit or wild_hit):
            return False
    return True


def _covers_paths(a: Rule, b: Rule) -> bool:
    if not a.paths:
        return True
    if not b.paths or a.match_query != b.match_query:
        return False
    return {p.pattern for p in b.paths} <= {p.pattern for p in a.paths}


def _covers_subjects(a: Rule, b: Rule) -> bool:
    """Every clause of b implies some clause of a (a's clause is a subset of b's)."""
    if a.subjects is None:
        return True
    if b.subjects is None:
        return False
    return all(any(ca <= cb for ca in a.subjects) for cb in b.subjects)


def _covers_networks(a: Rule, b: Rule) -> bool:
    if a.networks is None:
        return True
    if b.networks is None:
        return False
    return all(
        any(nb.version == na.version and nb.subnet_of(na) for na in a.networks)  # type: ignore[arg-type]
        for nb in b.networks
    )
