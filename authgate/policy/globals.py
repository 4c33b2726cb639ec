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
from typing import Literal

from authgate.core.values import Level

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
AAGUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
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


def default_caps() -> Mapping[Level, SessionCap]:
    return MappingProxyType({level: SessionCap(*caps) for level, caps in NIST_CAPS.items()})


@dataclass(frozen=True)
class Sessions:
    """Per-level caps used when a rule sets none; ``refresh_interval``: directory re-read."""

    caps: Mapping[Level, SessionCap] = field(default_factory=default_caps)
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
class PolicyGlobals:
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
