"""Load ``policies/*.yaml`` strictly into a PolicySet.

Fail closed (ASVS 4.1.5): an unknown key, a bad regex, CIDR, time zone or duration, or a
duplicate id makes the whole set invalid; every problem is reported at once as
``file:line rule-id: message`` so a reviewer fixes them in one pass. The digest is taken
over the exact bytes parsed, so what is approved is what is enforced.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from yaml.nodes import MappingNode, Node, ScalarNode

from authgate.core.errors import PolicyError
from authgate.policy.engine import RuleIndex
from authgate.policy.files import nodes
from authgate.policy.files.globals import (
    parse_cidr,
    parse_settings,
    parse_tz,
)
from authgate.policy.files.lint import lint_rules, shadowed_rules
from authgate.policy.files.nodes import Problems, Where
from authgate.policy.globals import GLOBAL_SECTIONS, SLUG
from authgate.policy.values import HoursWindow, IPNetwork, PolicySet, Requirement, Rule

APPROVALS_FILE = "approvals.yaml"
TOP_LEVEL = ("version", *GLOBAL_SECTIONS, "rules")
RULE_KEYS = (
    "id",
    "description",
    "domains",
    "paths",
    "match_query",
    "methods",
    "subjects",
    "networks",
    "hours",
    "level",
    "max_session_age",
    "idle_timeout",
    "mode",
)
#: ``mode``: a rule decides (``enforce``, the default) or only reports (issue 19 item 3)
MODES = ("enforce", "report_only")
_HOST = re.compile(r"^(\*\.)?([a-z0-9]([a-z0-9-]*[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$")
_METHOD = re.compile(r"^[A-Z]+$")
_TIME = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$|^24:00$")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class _Context:
    """What rule parsing needs from the global sections."""

    networks: Mapping[str, tuple[IPNetwork, ...]]
    default_tz: ZoneInfo | None


def policy_files(directory: Path) -> list[Path]:
    """The files of a policy set: ``*.yaml`` directly in the directory, approvals excluded,
    sorted by name (rules are concatenated in this order)."""
    return sorted(
        (p for p in directory.glob("*.yaml") if p.name != APPROVALS_FILE and p.is_file()),
        key=lambda p: p.name,
    )


def compute_digest(directory: Path) -> str:
    """sha256 over the policy files in canonical order; cheap enough to poll for changes."""
    return _digest([(p.name, p.read_bytes()) for p in policy_files(directory)])


def _digest(sources: list[tuple[str, bytes]]) -> str:
    """Each file as ``name NUL length NUL bytes`` so no two sets can collide by re-splitting."""
    h = hashlib.sha256()
    for name, data in sources:
        h.update(name.encode("utf-8") + b"\0" + str(len(data)).encode() + b"\0" + data)
    return h.hexdigest()


def load_policy_set(directory: Path) -> PolicySet:
    """Read, validate and compile a policy directory; raise PolicyError listing every error."""
    problems = Problems()
    directory = Path(directory)
    if not directory.is_dir():
        raise PolicyError([f"{directory}:0 -: policy directory not found"])
    for stray in sorted(directory.glob("*.yml")):
        problems.errors.append(
            f"{stray}:0 -: policy files must end in .yaml (this one would be ignored)"
        )
    sources = [(p, p.read_bytes()) for p in policy_files(directory)]
    if not sources:
        problems.errors.append(f"{directory}:0 -: no policy files (*.yaml)")
    documents = [
        doc for doc in (_read_document(path, data, problems) for path, data in sources) if doc
    ]
    sections, rule_lists = _split_sections(documents)
    settings = parse_settings(sections)
    default_tz = ZoneInfo(settings.defaults.tz) if settings.defaults.tz else None
    context = _Context(settings.networks, default_tz)
    rules = _parse_rules(rule_lists, context)
    problems.errors.extend(shadowed_rules(rules))
    if problems.errors:
        raise PolicyError(problems.errors)
    warnings = lint_rules(rules, settings)
    if not rules:
        warnings.append(f"{directory}:0 -: no rules: every request will be denied")
    return PolicySet(
        rules=tuple(rules),
        settings=settings,
        digest=_digest([(p.name, data) for p, data in sources]),
        warnings=tuple(problems.warnings + warnings),
        files=tuple(p.name for p, _ in sources),
        index=RuleIndex(rules),
        sources=tuple((p.name, data) for p, data in sources),
    )


def _read_document(
    path: Path, data: bytes, problems: Problems
) -> tuple[Where, dict[str, Node]] | None:
    where = Where(str(path), "-", problems)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        where.error(None, "not UTF-8")
        return None
    root = nodes.compose(where, text)
    if root is None:
        return None
    top = nodes.mapping(where, root, TOP_LEVEL, required=("version",))
    if top is None:
        return None
    if (
        "version" in top
        and nodes.integer(where.at("version"), top["version"], "version", 1, 1) is None
    ):
        return None
    return where, top


def _split_sections(
    documents: list[tuple[Where, dict[str, Node]]],
) -> tuple[dict[str, tuple[Where, Node]], list[tuple[Where, Node]]]:
    """Global sections (each in one file only) and the rule lists, in file order."""
    sections: dict[str, tuple[Where, Node]] = {}
    rule_lists: list[tuple[Where, Node]] = []
    for where, top in documents:
        for key, node in top.items():
            if key == "rules":
                rule_lists.append((where, node))
            elif key in sections:
                first, first_node = sections[key]
                where.at(key).error(
                    node,
                    f"section '{key}' already defined at {first.file}:{nodes.line_of(first_node)}",
                )
            elif key != "version":
                sections[key] = (where, node)
    return sections, rule_lists


def _parse_rules(rule_lists: list[tuple[Where, Node]], context: _Context) -> list[Rule]:
    rules: list[Rule] = []
    seen: dict[str, str] = {}
    for where, node in rule_lists:
        for index, rule_node in enumerate(
            nodes.sequence(where.at("rules"), node, "rules", allow_empty=True)
        ):
            rule = _parse_rule(where.at(f"rules[{index}]"), rule_node, len(rules), context)
            if rule is None:
                continue
            if rule.id in seen:
                where.at(rule.id).error(
                    rule_node, f"duplicate rule id (first defined at {seen[rule.id]})"
                )
                continue
            seen[rule.id] = rule.source
            rules.append(rule)
    return rules


def _parse_rule(where: Where, node: Node, position: int, context: _Context) -> Rule | None:
    rule_id = _peek_id(node)
    here = where.at(rule_id) if rule_id else where
    items = nodes.mapping(here, node, RULE_KEYS, required=("id", "level"))
    if items is None:
        return None
    if "id" in items and nodes.string(where, items["id"], "id") is not None and rule_id is None:
        where.error(
            items["id"], f"id '{items['id'].value}' must be a lower-case slug (a-z, 0-9, -, _)"
        )
    before = len(where.problems.errors)
    fields: dict[str, Any] = {}
    for key, value in items.items():
        parser = _RULE_PARSERS.get(key)
        if parser is not None:
            fields.update(parser(here, value, context))
    fields.setdefault("description", "")
    _check_level_options(here, node, fields)
    if rule_id is None or "level" not in fields or len(where.problems.errors) > before:
        return None
    return Rule(
        id=rule_id, position=position, source=f"{where.file}:{nodes.line_of(node)}", **fields
    )


def _peek_id(node: Node) -> str | None:
    """The rule's id when it is a valid slug, so every message about the rule can name it."""
    if isinstance(node, MappingNode):
        for key, value in node.value:
            if isinstance(key, ScalarNode) and key.value == "id" and isinstance(value, ScalarNode):
                return (
                    str(value.value)
                    if value.tag.endswith(":str") and SLUG.match(value.value)
                    else None
                )
    return None


def _check_level_options(where: Where, node: Node, fields: dict[str, Any]) -> None:
    level = fields.get("level")
    if level in (Requirement.BYPASS, Requirement.DENY):
        for key in ("max_session_age", "idle_timeout"):
            if key in fields:
                where.error(node, f"{key} has no effect on a {level.value} rule")


def _level(where: Where, node: Node, _: _Context) -> dict[str, Any]:
    text = nodes.string(where, node, "level")
    try:
        return {"level": Requirement(text)} if text is not None else {}
    except ValueError:
        where.error(node, f"level '{text}' is not one of {', '.join(r.value for r in Requirement)}")
        return {}


def _mode(where: Where, node: Node, _: _Context) -> dict[str, Any]:
    text = nodes.string(where, node, "mode")
    if text is not None and text not in MODES:
        where.error(node, f"mode '{text}' is not one of {', '.join(MODES)}")
        return {}
    return {"report_only": text == "report_only"} if text is not None else {}


def _description(where: Where, node: Node, _: _Context) -> dict[str, Any]:
    text = nodes.string(where, node, "description")
    return {"description": text.strip()} if text is not None else {}


def _domains(where: Where, node: Node, _: _Context) -> dict[str, Any]:
    domains = [d.lower().rstrip(".") for d in nodes.string_list(where, node, "domains")]
    for domain in domains:
        if not _HOST.match(domain):
            where.error(node, f"domains: '{domain}' is not a host name or *.wildcard")
    exact = frozenset(d for d in domains if not d.startswith("*."))
    parents = tuple(d[2:] for d in domains if d.startswith("*."))
    return {"domains": tuple(domains), "exact_hosts": exact, "wildcard_parents": parents}


def _paths(where: Where, node: Node, _: _Context) -> dict[str, Any]:
    patterns = []
    for text in nodes.string_list(where, node, "paths"):
        try:
            patterns.append(re.compile(text))
        except re.error as exc:
            where.error(node, f"paths: bad regular expression '{text}': {exc}")
    return {"paths": tuple(patterns)}


def _match_query(where: Where, node: Node, _: _Context) -> dict[str, Any]:
    value = nodes.boolean(where, node, "match_query")
    return {"match_query": value} if value is not None else {}


def _methods(where: Where, node: Node, _: _Context) -> dict[str, Any]:
    methods = [m.upper() for m in nodes.string_list(where, node, "methods")]
    for method in methods:
        if not _METHOD.match(method):
            where.error(node, f"methods: '{method}' is not an HTTP method")
    return {"methods": frozenset(methods)}


def _subjects(where: Where, node: Node, _: _Context) -> dict[str, Any]:
    """``[user:a, group:b, [group:c, group:d]]`` → a OR b OR (c AND d)."""
    clauses = []
    for item in nodes.sequence(where, node, "subjects"):
        terms = (
            nodes.string_list(where, item, "subjects")
            if item.tag.endswith(":seq")
            else [t for t in [nodes.string(where, item, "subjects")] if t is not None]
        )
        clause = set()
        for term in terms:
            kind, _sep, name = term.partition(":")
            if kind not in ("user", "group") or not name.strip():
                where.error(item, f"subjects: '{term}' must be user:NAME or group:NAME")
            else:
                clause.add((kind, name.strip().casefold()))
        if clause:
            clauses.append(frozenset(clause))
    return {"subjects": tuple(clauses)}


def _networks(where: Where, node: Node, context: _Context) -> dict[str, Any]:
    nets: list[IPNetwork] = []
    names = nodes.string_list(where, node, "networks")
    for name in names:
        if name in context.networks:
            nets.extend(context.networks[name])
            continue
        net = parse_cidr(name)
        if net is None:
            where.error(node, f"networks: '{name}' is neither a defined network nor a valid CIDR")
        else:
            nets.append(net)
    return {"networks": tuple(nets), "network_names": tuple(names)}


def _hours(where: Where, node: Node, context: _Context) -> dict[str, Any]:
    windows = [_window(where, item, context) for item in nodes.sequence(where, node, "hours")]
    return {"hours": tuple(w for w in windows if w is not None)}


def _window(where: Where, node: Node, context: _Context) -> HoursWindow | None:
    items = nodes.mapping(where, node, ("days", "from", "to", "tz"), required=("from", "to"))
    if items is None:
        return None
    days = nodes.string_list(where, items["days"], "days") if "days" in items else list(DAYS)
    for day in days:
        if day not in DAYS:
            where.error(items["days"], f"hours: day '{day}' is not one of {', '.join(DAYS)}")
    start, end = (_minutes(where, items[k]) if k in items else None for k in ("from", "to"))
    tz = parse_tz(where, items["tz"]) if "tz" in items else context.default_tz
    if "tz" not in items and tz is None:
        where.error(node, "hours: no tz and no defaults.tz")
    if start is None or end is None or tz is None:
        return None
    if start == end or start == 1440:
        where.error(node, "hours: 'from' and 'to' must differ and 'from' cannot be 24:00")
        return None
    text = f"{','.join(days)} {_hhmm(start)}-{_hhmm(end)} {tz.key}"
    return HoursWindow(frozenset(DAYS.index(d) for d in days if d in DAYS), start, end, tz, text)


def _minutes(where: Where, node: Node) -> int | None:
    text = nodes.raw_text(where, node, "hours")
    match = _TIME.match(text or "")
    if match is None:
        where.error(node, f"hours: '{text}' is not a time HH:MM (00:00 to 24:00)")
        return None
    return 1440 if text == "24:00" else int(match.group(1)) * 60 + int(match.group(2))


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _duration(key: str) -> Any:
    def parse(where: Where, node: Node, _: _Context) -> dict[str, Any]:
        value = nodes.duration(where, node, key)
        return {key: value} if value is not None else {}

    return parse


_RULE_PARSERS: dict[str, Any] = {
    "level": _level,
    "mode": _mode,
    "description": _description,
    "domains": _domains,
    "paths": _paths,
    "match_query": _match_query,
    "methods": _methods,
    "subjects": _subjects,
    "networks": _networks,
    "hours": _hours,
    "max_session_age": _duration("max_session_age"),
    "idle_timeout": _duration("idle_timeout"),
}
