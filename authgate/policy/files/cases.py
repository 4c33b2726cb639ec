"""Policy test tables: ``policies/tests/*.yaml`` cases of (subject, request, expected outcome).

They show a reviewer what a change does before approving it (Authelia-style access tests),
and run both under ``authgate policy test`` and in the unit suite. Case files are read as
strictly as policies: a typo in a case must not make it pass vacuously, so an unknown
expected rule id is an error.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from yaml.nodes import Node

from authgate.core.errors import PolicyError
from authgate.core.values import Level, Resource
from authgate.policy.engine import decide
from authgate.policy.files import nodes
from authgate.policy.files.nodes import Problems, Where
from authgate.policy.values import Decision, PolicySet, Subject, Verdict

#: Monday 5 January 2026, 10:00 in Toronto: a working hour, so cases are reproducible.
DEFAULT_AT = datetime.fromisoformat("2026-01-05T15:00:00+00:00")
REASONS = (
    "bypass",
    "allowed",
    "login_required",
    "step_up",
    "reauth_age",
    "reauth_idle",
    "denied_by_rule",
    "default_deny",
    "ambiguous_path",
)


@dataclass(frozen=True)
class Case:
    name: str
    source: str
    subject: Subject
    resource: Resource
    at: datetime
    verdict: Verdict
    rule: str | None  # None: the default deny
    reason: str | None


@dataclass(frozen=True)
class CaseResult:
    case: Case
    decision: Decision
    passed: bool
    message: str  # what differed, empty when passed


def resource_from_url(url: str, method: str = "GET") -> Resource:
    """A Resource from an absolute http(s) URL; ValueError when it is not one."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"'{url}' is not an absolute http(s) URL")
    return Resource(
        scheme=parts.scheme,
        host=parts.hostname.lower(),
        path=parts.path or "/",
        method=method.upper(),
        query=parts.query,
        port=parts.port,
    )


def parse_instant(text: str) -> datetime:
    """An ISO 8601 time with an offset (``Z`` accepted); naive times are refused."""
    value = datetime.fromisoformat(text.strip())
    if value.tzinfo is None:
        raise ValueError(f"'{text}' has no UTC offset")
    return value


def make_subject(
    *,
    user: str | None,
    groups: frozenset[str],
    level: Level | None,
    ip: str | None,
    at: datetime,
    auth_age: timedelta,
    idle: timedelta,
) -> Subject:
    """A Subject as the session layer would build it; level defaults by login state."""
    level = level or (Level.NONE if user is None else Level.PASSWORD)
    logged_in = user is not None
    return Subject(
        username=user,
        groups=groups,
        level=level,
        auth_time=at - auth_age if logged_in else None,
        last_seen=at - idle if logged_in else None,
        ip=ipaddress.ip_address(ip) if ip else None,
    )


def load_cases(cases_dir: Path, ps: PolicySet) -> list[Case]:
    """Every case in ``cases_dir/*.yaml``; PolicyError lists every malformed case."""
    problems = Problems()
    cases: list[Case] = []
    for path in sorted(Path(cases_dir).glob("*.yaml")):
        where = Where(str(path), "-", problems)
        root = nodes.compose(where, path.read_text(encoding="utf-8"))
        top = (
            nodes.mapping(where, root, ("at", "cases"), required=("cases",))
            if root is not None
            else None
        )
        if not top or "cases" not in top:
            continue
        default_at = _instant(where, top["at"]) if "at" in top else DEFAULT_AT
        for index, node in enumerate(nodes.sequence(where, top["cases"], "cases")):
            case = _case(where.at(f"cases[{index}]"), node, default_at or DEFAULT_AT, ps)
            if case is not None:
                cases.append(case)
    if problems.errors:
        raise PolicyError(problems.errors)
    return cases


def _case(where: Where, node: Node, default_at: datetime, ps: PolicySet) -> Case | None:
    items = nodes.mapping(
        where,
        node,
        ("name", "subject", "request", "at", "expect"),
        required=("name", "request", "expect"),
    )
    if items is None or not {"name", "request", "expect"} <= items.keys():
        return None
    name = nodes.string(where, items["name"], "name")
    here = where.at(name) if name else where
    before = len(where.problems.errors)
    at = _instant(here, items["at"]) if "at" in items else default_at
    resource = _request(here, items["request"])
    expect = _expect(here, items["expect"], ps)
    subject = _subject(here, items.get("subject"), at or default_at)
    if len(where.problems.errors) > before or name is None or resource is None or at is None:
        return None
    return Case(name, f"{where.file}:{nodes.line_of(node)}", subject, resource, at, *expect)


def _instant(where: Where, node: Node) -> datetime | None:
    text = nodes.raw_text(where, node, "at")
    try:
        return parse_instant(text or "")
    except ValueError:
        where.error(node, f"at: '{text}' is not an ISO 8601 time with an offset")
        return None


def _request(where: Where, node: Node) -> Resource | None:
    items = nodes.mapping(where, node, ("url", "method"), required=("url",)) or {}
    url = nodes.string(where, items["url"], "url") if "url" in items else None
    method = nodes.string(where, items["method"], "method") if "method" in items else "GET"
    if url is None or method is None:
        return None
    try:
        return resource_from_url(url, method)
    except ValueError as exc:
        where.error(items["url"], str(exc))
        return None


def _subject(where: Where, node: Node | None, at: datetime) -> Subject:
    items = (
        nodes.mapping(where, node, ("user", "groups", "level", "ip", "auth_age", "idle"))
        if node is not None
        else {}
    )
    items = items or {}
    values: dict[str, Any] = {
        "user": None,
        "groups": frozenset(),
        "level": None,
        "ip": None,
        "auth_age": timedelta(0),
        "idle": timedelta(0),
    }
    if "user" in items:
        values["user"] = nodes.string(where, items["user"], "user")
    if "groups" in items:
        values["groups"] = frozenset(
            nodes.string_list(where, items["groups"], "groups", allow_empty=True)
        )
    if "level" in items:
        values["level"] = _enum(where, items["level"], Level, "level")
    if "ip" in items:
        values["ip"] = _ip(where, items["ip"])
    for key in ("auth_age", "idle"):
        if key in items:
            values[key] = _age(where, items[key], key)
    return make_subject(at=at, **values)


def _ip(where: Where, node: Node) -> str | None:
    text = nodes.string(where, node, "ip")
    try:
        return str(ipaddress.ip_address(text)) if text else None
    except ValueError:
        where.error(node, f"ip: '{text}' is not an IP address")
        return None


def _age(where: Where, node: Node, what: str) -> timedelta:
    text = nodes.raw_text(where, node, what)
    if text is not None and text.strip() in ("0", "0s", "0m"):
        return timedelta(0)
    return nodes.duration(where, node, what) or timedelta(0)


def _enum(where: Where, node: Node, enum: Any, what: str) -> Any:
    text = nodes.string(where, node, what)
    try:
        return enum(text) if text is not None else None
    except ValueError:
        where.error(node, f"{what}: '{text}' is not one of {', '.join(e.value for e in enum)}")
        return None


def _expect(where: Where, node: Node, ps: PolicySet) -> tuple[Verdict, str | None, str | None]:
    items = (
        nodes.mapping(where, node, ("verdict", "rule", "reason"), required=("verdict", "rule"))
        or {}
    )
    verdict = _enum(where, items["verdict"], Verdict, "verdict") if "verdict" in items else None
    rule = nodes.string(where, items["rule"], "rule") if "rule" in items else None
    if rule is not None and rule != "default" and ps.rule(rule) is None:
        where.error(items["rule"], f"rule: no rule with id '{rule}' in the policy set")
    reason = nodes.string(where, items["reason"], "reason") if "reason" in items else None
    if reason is not None and reason not in REASONS:
        where.error(items["reason"], f"reason: '{reason}' is not one of {', '.join(REASONS)}")
    return verdict or Verdict.DENY, None if rule == "default" else rule, reason


def run_case(ps: PolicySet, case: Case) -> CaseResult:
    decision = decide(ps, subject=case.subject, resource=case.resource, now=case.at)
    wrong = []
    if decision.verdict is not case.verdict:
        wrong.append(f"verdict {decision.verdict.value} (expected {case.verdict.value})")
    if decision.rule_id != case.rule:
        wrong.append(f"rule {decision.rule_id or 'default'} (expected {case.rule or 'default'})")
    if case.reason is not None and decision.reason != case.reason:
        wrong.append(f"reason {decision.reason} (expected {case.reason})")
    return CaseResult(case, decision, not wrong, "; ".join(wrong))


def run_cases(ps: PolicySet, cases_dir: Path) -> list[CaseResult]:
    """Load and run every case; PolicyError when a case file is malformed."""
    return [run_case(ps, case) for case in load_cases(cases_dir, ps)]


def uncovered_rules(ps: PolicySet, results: list[CaseResult]) -> list[str]:
    """Ids of rules no case expects: a reviewer should see each rule exercised (a
    report-only rule decides no case, so it is not asked for)."""
    expected = {result.case.rule for result in results}
    return [rule.id for rule in ps.rules if rule.id not in expected and not rule.report_only]
