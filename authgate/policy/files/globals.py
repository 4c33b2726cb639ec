"""Reading the policy set's global sections from YAML nodes, with every error's line.

The values they become are in ``authgate.policy.globals``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from datetime import timedelta
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from yaml.nodes import Node

from authgate.core.values import Level
from authgate.policy.files import nodes
from authgate.policy.files.nodes import Where
from authgate.policy.globals import (
    AAGUID,
    NIST_CAPS,
    SLUG,
    Defaults,
    Enrolment,
    Factors,
    PolicyGlobals,
    Regulation,
    Roles,
    SessionCap,
    Sessions,
    Totp,
    WebAuthn,
    default_caps,
)
from authgate.policy.values import IPNetwork


def _dur(where: Where, node: Node) -> timedelta | None:
    return nodes.duration(where, node, "")


def _int(low: int, high: int) -> nodes.Parser:
    return lambda where, node: nodes.integer(where, node, "", low, high)


def _choice(*options: str) -> nodes.Parser:
    def parse(where: Where, node: Node) -> str | None:
        value = nodes.string(where, node, "")
        if value is not None and value not in options:
            where.error(node, f"'{value}' is not one of {', '.join(options)}")
            return None
        return value

    return parse


def _groups(where: Where, node: Node) -> frozenset[str] | None:
    return frozenset(nodes.string_list(where, node, "", allow_empty=True))


def _aaguids(where: Where, node: Node) -> tuple[str, ...]:
    values = nodes.string_list(where, node, "", allow_empty=True)
    for value in values:
        if not AAGUID.match(value):
            where.error(node, f"'{value}' is not a lower-case UUID")
    return tuple(values)


def parse_cidr(text: str) -> IPNetwork | None:
    """A network in CIDR form; host bits set is refused (a typo, usually)."""
    try:
        return ipaddress.ip_network(text, strict=True)
    except ValueError:
        return None


def parse_networks(where: Where, node: Node) -> Mapping[str, tuple[IPNetwork, ...]]:
    """``networks: {city-lan: [10.0.0.0/8], vpn: [...]}``."""
    items = nodes.mapping(where, node, None)
    result: dict[str, tuple[IPNetwork, ...]] = {}
    for name, value in (items or {}).items():
        here = where.at(f"networks.{name}")
        if not SLUG.match(name):
            here.error(value, f"network name '{name}' must be a lower-case slug")
        nets = []
        for text in nodes.string_list(here, value, "networks"):
            net = parse_cidr(text)
            if net is None:
                here.error(value, f"bad CIDR '{text}'")
            else:
                nets.append(net)
        result[name] = tuple(nets)
    return MappingProxyType(result)


def parse_roles(where: Where, node: Node) -> Roles:
    values = nodes.read_fields(where, node, {"admin_groups": _groups, "auditor_groups": _groups})
    roles = Roles(**values)
    overlap = roles.admin_groups & roles.auditor_groups
    if overlap:
        where.error(
            node,
            f"groups {sorted(overlap)} hold both admin and auditor roles (separation of duties)",
        )
    return roles


def _cap(where: Where, node: Node) -> SessionCap | None:
    values = nodes.read_fields(where, node, {"max_age": _dur, "idle_timeout": _dur})
    missing = {"max_age", "idle_timeout"} - values.keys()
    if missing:
        where.error(node, f"missing {', '.join(sorted(missing))}")
        return None
    return SessionCap(**values)


def parse_sessions(where: Where, node: Node) -> Sessions:
    values = nodes.read_fields(where, node, {"caps": _parse_caps, "refresh_interval": _dur})
    return Sessions(**values)


def _parse_caps(where: Where, node: Node) -> Mapping[Level, SessionCap]:
    names = [level.value for level in NIST_CAPS]
    caps = dict(default_caps())
    for name, value in (nodes.mapping(where, node, names) or {}).items():
        level = Level(name)
        cap = _cap(where.at(f"sessions.caps.{name}"), value)
        if cap is None:
            continue
        caps[level] = cap
        nist_age, nist_idle = NIST_CAPS[level]
        if cap.max_age > nist_age or cap.idle_timeout > nist_idle:
            where.at(f"sessions.caps.{name}").warn(
                value,
                f"looser than the NIST SP 800-63B cap ({_fmt(nist_age)} / {_fmt(nist_idle)} idle)",
            )
    return MappingProxyType(caps)


def _fmt(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    return f"{minutes // 60}h" if minutes % 60 == 0 else f"{minutes}m"


_REGULATION: dict[str, nodes.Parser] = {
    "max_failures_per_user": _int(1, 100),  # 63B 5.2.2: never more than 100
    "max_failures_per_ip": _int(1, 10_000),
    "window": _dur,
    "ban_time": _dur,
    "ban_escalation": lambda w, n: nodes.number(w, n, "", 1.0, 100.0),
    "spray_distinct_users": _int(2, 10_000),
    "second_factor_max_failures": _int(1, 100),
}
_TOTP: dict[str, nodes.Parser] = {
    "digits": _int(6, 8),
    "period": _int(15, 120),
    "algorithm": _choice("SHA1", "SHA256", "SHA512"),
    "valid_window": _int(0, 2),
}
_WEBAUTHN: dict[str, nodes.Parser] = {
    "user_verification": _choice("required", "preferred", "discouraged"),
    "attestation": _choice("none", "indirect", "direct", "enterprise"),
    "aaguid_allowlist": _aaguids,
    "challenge_ttl": _dur,
}


def parse_factors(where: Where, node: Node) -> Factors:
    values = nodes.read_fields(
        where,
        node,
        {
            "totp": lambda w, n: Totp(**nodes.read_fields(w.at("factors.totp"), n, _TOTP)),
            "webauthn": lambda w, n: WebAuthn(
                **nodes.read_fields(w.at("factors.webauthn"), n, _WEBAUTHN)
            ),
        },
    )
    return Factors(**values)


def parse_defaults(where: Where, node: Node) -> Defaults:
    values = nodes.read_fields(where, node, {"tz": parse_tz})
    return Defaults(tz=values["tz"].key if "tz" in values else None)


def parse_tz(where: Where, node: Node) -> ZoneInfo | None:
    """A time zone from the IANA database; unknown names are errors, never UTC by accident."""
    name = nodes.string(where, node, "tz")
    if name is None:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        where.error(node, f"unknown time zone '{name}'")
        return None


def parse_enrolment(where: Where, node: Node, networks: Mapping[str, object]) -> Enrolment:
    def network_names(w: Where, n: Node) -> tuple[str, ...]:
        names = nodes.string_list(w, n, "", allow_empty=True)
        for name in names:
            if name not in networks:
                w.error(n, f"unknown network '{name}'")
        return tuple(names)

    return Enrolment(
        **nodes.read_fields(
            where,
            node,
            {
                "code_ttl": _dur,
                "first_enrolment_networks": network_names,
                "fresh_auth_for_new_factor": _dur,
            },
        )
    )


def parse_settings(sections: dict[str, tuple[Where, Node]]) -> PolicyGlobals:
    """Build PolicyGlobals from the global sections found (each at most once across files)."""

    def read(name: str, parse: Any) -> Any:
        where, node = sections[name]
        return parse(where.at(name), node)

    kwargs: dict[str, Any] = {}
    parsers = {
        "networks": parse_networks,
        "roles": parse_roles,
        "sessions": parse_sessions,
        "regulation": lambda w, n: Regulation(**nodes.read_fields(w, n, _REGULATION)),
        "factors": parse_factors,
        "defaults": parse_defaults,
    }
    for name, parse in parsers.items():
        if name in sections:
            kwargs[name] = read(name, parse)
    if "enrolment" in sections:
        networks = kwargs.get("networks", {})
        kwargs["enrolment"] = read("enrolment", lambda w, n: parse_enrolment(w, n, networks))
    return PolicyGlobals(**kwargs)
