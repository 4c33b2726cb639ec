"""Strict reading of composed YAML nodes, collecting every problem with its line.

Policy files are read with ``yaml.compose`` (SafeLoader) rather than ``safe_load`` so every
value keeps its position: a reviewer must be told *where* a policy is wrong, and all at once
(Authelia's validator does the same). Nothing here raises on bad input; problems are
appended to a :class:`Problems` list and the caller decides.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

T = TypeVar("T")
Parser = Callable[["Where", Node], Any]

_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_BOOL = "tag:yaml.org,2002:bool"
_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_constructor = SafeConstructor()


@dataclass
class Problems:
    """Errors and warnings gathered while loading, in file order."""

    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Where:
    """The file and the rule (or section) being read: the prefix of every message."""

    file: str
    label: str
    problems: Problems

    def at(self, label: str) -> Where:
        return Where(self.file, label, self.problems)

    def error(self, node: Node | None, message: str) -> None:
        self.problems.errors.append(f"{self.file}:{line_of(node)} {self.label}: {message}")

    def warn(self, node: Node | None, message: str) -> None:
        self.problems.warnings.append(f"{self.file}:{line_of(node)} {self.label}: {message}")


def line_of(node: Node | None) -> int:
    """1-based line of a node (0 when unknown, e.g. a missing section)."""
    return node.start_mark.line + 1 if node is not None else 0


def compose(where: Where, text: str) -> Node | None:
    """Compose one YAML document with the safe loader; report syntax errors with their line."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 0
        where.problems.errors.append(f"{where.file}:{line} {where.label}: YAML: {exc.problem}")
        return None
    except yaml.YAMLError as exc:
        where.error(None, f"YAML: {exc}")
        return None
    if node is None:
        where.error(None, "file is empty")
    return node


def mapping(
    where: Where, node: Node, allowed: Iterable[str] | None, required: Iterable[str] = ()
) -> dict[str, Node] | None:
    """Read a mapping with string keys; unknown (unless ``allowed`` is None), duplicate and
    missing keys are errors."""
    if not isinstance(node, MappingNode):
        where.error(node, f"expected a mapping, got {describe(node)}")
        return None
    allowed_set = set(allowed) if allowed is not None else None
    result: dict[str, Node] = {}
    for key_node, value_node in node.value:
        key = key_node.value if isinstance(key_node, ScalarNode) else None
        if not isinstance(key, str) or key_node.tag != _STR:
            where.error(key_node, f"keys must be strings, got {describe(key_node)}")
        elif key in result:
            where.error(key_node, f"duplicate key '{key}'")
        elif allowed_set is not None and key not in allowed_set:
            where.error(
                key_node, f"unknown key '{key}' (allowed: {', '.join(sorted(allowed_set))})"
            )
        else:
            result[key] = value_node
    for key in required:
        if key not in result:
            where.error(node, f"missing required key '{key}'")
    return result


def sequence(where: Where, node: Node, what: str, *, allow_empty: bool = False) -> list[Node]:
    """Read a list; a bare scalar is an error so that reviewers see one consistent form."""
    if not isinstance(node, SequenceNode):
        where.error(node, f"{_w(what)}expected a list, got {describe(node)}")
        return []
    if not node.value and not allow_empty:
        where.error(node, f"{_w(what)}empty list (omit the key to match everything)")
    return list(node.value)


def string(where: Where, node: Node, what: str) -> str | None:
    """A plain string scalar; numbers, booleans and nulls are refused (quote them)."""
    if isinstance(node, ScalarNode) and node.tag == _STR:
        return str(node.value)
    where.error(node, f"{_w(what)}expected a string, got {describe(node)}")
    return None


def raw_text(where: Where, node: Node, what: str) -> str | None:
    """The scalar's source text: ``07:00`` unquoted is a YAML 1.1 base-60 integer otherwise."""
    if isinstance(node, ScalarNode):
        return str(node.value)
    where.error(node, f"{_w(what)}expected a scalar, got {describe(node)}")
    return None


def string_list(where: Where, node: Node, what: str, *, allow_empty: bool = False) -> list[str]:
    values = (
        string(where, item, what) for item in sequence(where, node, what, allow_empty=allow_empty)
    )
    return [value for value in values if value is not None]


def integer(where: Where, node: Node, what: str, low: int, high: int) -> int | None:
    if isinstance(node, ScalarNode) and node.tag == _INT:
        value = int(_constructor.construct_yaml_int(node))
        if low <= value <= high:
            return value
        where.error(node, f"{_w(what)}{value} is outside {low}..{high}")
        return None
    where.error(node, f"{_w(what)}expected an integer, got {describe(node)}")
    return None


def number(where: Where, node: Node, what: str, low: float, high: float) -> float | None:
    if isinstance(node, ScalarNode) and node.tag in (_INT, _FLOAT):
        value = float(node.value.replace("_", ""))
        if low <= value <= high:
            return value
        where.error(node, f"{_w(what)}{value} is outside {low}..{high}")
        return None
    where.error(node, f"{_w(what)}expected a number, got {describe(node)}")
    return None


def boolean(where: Where, node: Node, what: str) -> bool | None:
    if isinstance(node, ScalarNode) and node.tag == _BOOL:
        return bool(_constructor.construct_yaml_bool(node))
    where.error(node, f"{_w(what)}expected true or false, got {describe(node)}")
    return None


def parse_duration(text: str) -> timedelta | None:
    """``8h30m`` → timedelta; None when malformed or zero. Units: d, h, m, s, in that order."""
    match = _DURATION.match(text.strip())
    if not match or not text.strip():
        return None
    days, hours, minutes, seconds = (int(part or 0) for part in match.groups())
    value = timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    return value if value > timedelta(0) else None


def duration(where: Where, node: Node, what: str) -> timedelta | None:
    """A positive duration with units (``30m``, ``12h``, ``8h30m``); bare numbers are refused."""
    if isinstance(node, ScalarNode) and node.tag == _STR:
        value = parse_duration(node.value)
        if value is not None:
            return value
    where.error(
        node, f"{_w(what)}expected a positive duration like 30m, 12h or 8h30m, got {describe(node)}"
    )
    return None


def _w(what: str) -> str:
    """Message prefix naming the value, empty when the label already names it."""
    return f"{what}: " if what else ""


def describe(node: Node | None) -> str:
    """A short, safe rendering of what was found, for error messages."""
    if node is None:
        return "nothing"
    if isinstance(node, ScalarNode):
        kind = node.tag.rsplit(":", 1)[-1]
        text = node.value if len(node.value) <= 40 else node.value[:37] + "..."
        return f"{kind} {text!r}"
    return "a list" if isinstance(node, SequenceNode) else "a mapping"


def read_fields(where: Where, node: Node, spec: dict[str, Parser]) -> dict[str, Any]:
    """Read a mapping whose keys each have a parser; only valid values are returned."""
    items = mapping(where, node, spec)
    if items is None:
        return {}
    result: dict[str, Any] = {}
    for key, value_node in items.items():
        value = spec[key](where.at(f"{where.label}.{key}"), value_node)
        if value is not None:
            result[key] = value
    return result
