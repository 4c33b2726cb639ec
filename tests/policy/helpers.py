"""Helpers for the policy engine tests: plain values, no Flask."""

from __future__ import annotations

import ipaddress
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

from authgate.core.values import Level, Resource
from authgate.policy import Subject

REPO = Path(__file__).resolve().parents[2]
BASELINE = REPO / "policies"
#: Monday 5 January 2026, 10:00 in Toronto (EST, UTC-5).
NOW = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)

GLOBALS = """\
version: 1
defaults: {tz: America/Toronto}
networks:
  city-lan: [10.0.0.0/8]
  vpn: [172.20.0.0/16, "2001:db8::/32"]
"""


def write(directory: Path, files: dict[str, str]) -> Path:
    """Write dedented policy files into ``directory`` and return it."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(textwrap.dedent(text), encoding="utf-8")
    return directory


def subject(
    user: str | None = "alice",
    groups: tuple[str, ...] = ("City-Staff",),
    level: str = "mfa",
    ip: str | None = "10.1.2.3",
    auth_age: timedelta = timedelta(minutes=10),
    idle: timedelta = timedelta(minutes=1),
    now: datetime = NOW,
) -> Subject:
    """A subject as the session layer would build it; anonymous when ``user`` is None."""
    logged_in = user is not None
    return Subject(
        username=user,
        groups=frozenset(groups) if logged_in else frozenset(),
        level=Level(level) if logged_in else Level.NONE,
        auth_time=now - auth_age if logged_in else None,
        last_seen=now - idle if logged_in else None,
        ip=ipaddress.ip_address(ip) if ip else None,
    )


def resource(url: str, method: str = "GET") -> Resource:
    from authgate.policy.files.cases import resource_from_url

    return resource_from_url(url, method)
