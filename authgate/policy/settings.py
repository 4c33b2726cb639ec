"""The policy set's global sections: named networks, roles, session caps, brute-force
regulation, enrolment and factor parameters.

They live with the rules (not in the deployment config) because they are part of what a
reviewer approves: changing a session cap or a throttle changes who gets in. Every section
is optional and falls back to the defaults below, which follow NIST SP 800-63B.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from types import MappingProxyType
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from yaml.nodes import Node

from authgate.model import Level
from authgate.policy import nodes
from authgate.policy.model import IPNetwork
from authgate.policy.nodes import Where

SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_AAGUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
GLOBAL_SECTIONS = (
    "networks",
    "roles",
    "sessions",
    "regulation",
    "enrolment",
    "factors",
    "defaults",
)
#: NIST SP 800-63B 4.2.3 / 4.3.3 re-authentication caps: (max age, idle) per level.
NIST_CAPS: Mapping[Level, tuple[timedelta, timedelta]] = MappingProxyType(
    {
        Level.PASSWORD: (timedelta(hours=12), timedelta(minutes=30)),  # treated like AAL2
        Level.MFA: (timedelta(hours=12), timedelta(minutes=30)),  # AAL2
        Level.PHISHING_RESISTANT: (timedelta(hours=12), timedelta(minutes=15)),  # AAL3
    }
)


@dataclass(frozen=True)
class Roles:
    """Directory groups holding authgate's own roles; kept apart (ASVS 4.3.3)."""

    admin_groups: frozenset[str] = frozenset()
    auditor_groups: frozenset[str] = frozenset()


@dataclass(frozen=True)
class SessionCap:
    max_age: timedelta
    idle_timeout: timedelta


def _default_caps() -> Mapping[Level, SessionCap]:
    return MappingProxyType({level: SessionCap(*caps) for level, caps in NIST_CAPS.items()})


@dataclass(frozen=True)
class Sessions:
    """Per-level caps used when a rule sets none; ``refresh_interval``: directory re-read."""

    caps: Mapping[Level, SessionCap] = field(default_factory=_default_caps)
    refresh_interval: timedelta = timedelta(minutes=5)


@dataclass(frozen=True)
class Regulation:
    """Brute-force thresholds (ASVS 2.2.1, 63B 5.2.2: well under 100 failures per account)."""

    max_failures_per_user: int = 5
    max_failures_per_ip: int = 20
    window: timedelta = timedelta(minutes=15)
    ban_time: timedelta = timedelta(minutes=15)
    ban_escalation: float = 2.0
    spray_distinct_users: int = 10
    second_factor_max_failures: int = 5


@dataclass(frozen=True)
class Enrolment:
    """Binding new authenticators (63B 6.1.2.1). No first-enrolment networks = admin code needed."""

    code_ttl: timedelta = timedelta(hours=24)
    first_enrolment_networks: tuple[str, ...] = ()
    fresh_auth_for_new_factor: timedelta = timedelta(minutes=5)


@dataclass(frozen=True)
class Totp:
    """RFC 6238 parameters."""

    digits: int = 6
    period: int = 30
    algorithm: Literal["SHA1", "SHA256", "SHA512"] = "SHA1"
    valid_window: int = 1


@dataclass(frozen=True)
class WebAuthn:
    """WebAuthn Level 2 relying-party options."""

    user_verification: Literal["required", "preferred", "discouraged"] = "preferred"
    attestation: Literal["none", "indirect", "direct", "enterprise"] = "none"
    aaguid_allowlist: tuple[str, ...] = ()
    challenge_ttl: timedelta = timedelta(minutes=2)


@dataclass(frozen=True)
class Factors:
    totp: Totp = field(default_factory=Totp)
    webauthn: WebAuthn = field(default_factory=WebAuthn)


@dataclass(frozen=True)
class Defaults:
    tz: str | None = None


@dataclass(frozen=True)
class Settings:
    """The global sections of a policy set, with safe defaults for absent ones."""

    networks: Mapping[str, tuple[IPNetwork, ...]] = field(
        default_factory=lambda: MappingProxyType({})
    )
    roles: Roles = field(default_factory=Roles)
    sessions: Sessions = field(default_factory=Sessions)
    regulation: Regulation = field(default_factory=Regulation)
    enrolment: Enrolment = field(default_factory=Enrolment)
    factors: Factors = field(default_factory=Factors)
    defaults: Defaults = field(default_factory=Defaults)


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
        if not _AAGUID.match(value):
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
    caps = dict(_default_caps())
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


def parse_settings(sections: dict[str, tuple[Where, Node]]) -> Settings:
    """Build Settings from the global sections found (each at most once across files)."""

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
    return Settings(**kwargs)
