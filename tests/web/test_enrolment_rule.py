"""The NIST 63B 6.1.2.1 enrolment rule and the freshness test, as pure functions, and the
request-scoped audit constructor they and the views share."""
from __future__ import annotations

import ipaddress
from datetime import UTC, datetime, timedelta
from types import MappingProxyType

import pytest

from authgate.core.values import AuditEvent, Level, Outcome, RequestMeta, SessionRecord
from authgate.credentials.enrolment import (
    FactorKind,
    authenticated_within,
    fresh_strong_login,
    may_enrol,
)
from authgate.policy.globals import Enrolment, PolicyGlobals

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
OFFICE = ipaddress.ip_network("10.1.0.0/16")
POLICY = PolicyGlobals(
    networks=MappingProxyType({"office": (OFFICE,)}),
    enrolment=Enrolment(first_enrolment_networks=("office",),
                        fresh_auth_for_new_factor=timedelta(minutes=5)))


def session(level: Level = Level.MFA, *, age: timedelta = timedelta(minutes=1),
            data: dict[str, str] | None = None) -> SessionRecord:
    return SessionRecord(id_hash="h", username="alice", groups=frozenset(), level=level,
                         created_at=NOW - age, auth_time=NOW - age, last_seen=NOW,
                         expires_at=NOW + timedelta(hours=8), client_ip="", user_agent="",
                         data=data or {})


def allowed(s: SessionRecord, *, has_factors: bool, ip: str | None = None,
            kind: FactorKind = "totp") -> bool:
    return may_enrol(kind=kind, session=s, now=NOW, policy=POLICY, has_factors=has_factors,
                     ip=ipaddress.ip_address(ip) if ip else None).allowed


@pytest.mark.parametrize(("level", "age", "expected"), [
    (Level.MFA, timedelta(minutes=1), True),
    (Level.PHISHING_RESISTANT, timedelta(minutes=5), True),
    (Level.MFA, timedelta(minutes=6), False),  # not fresh
    (Level.PASSWORD, timedelta(minutes=1), False),  # a password alone never adds a factor
])
def test_a_user_with_factors_needs_a_fresh_strong_login(level: Level, age: timedelta,
                                                        expected: bool) -> None:
    assert allowed(session(level, age=age), has_factors=True, ip="10.1.2.3") is expected
    assert fresh_strong_login(session(level, age=age), now=NOW,
                              within=timedelta(minutes=5)) is expected


def test_a_redeemed_admin_code_opens_a_window() -> None:
    live = {"enrol_until": (NOW + timedelta(minutes=1)).isoformat()}
    spent = {"enrol_until": (NOW - timedelta(minutes=1)).isoformat()}
    assert allowed(session(Level.PASSWORD, data=live), has_factors=False)
    assert not allowed(session(Level.PASSWORD, data=spent), has_factors=False)


def test_first_enrolment_only_from_a_named_network() -> None:
    first = session(Level.PASSWORD)
    assert allowed(first, has_factors=False, ip="10.1.2.3")
    assert not allowed(first, has_factors=False, ip="192.0.2.1")
    assert not allowed(first, has_factors=False, ip=None)
    assert not may_enrol(kind="totp", session=first, now=NOW, policy=PolicyGlobals(),
                         has_factors=False, ip=ipaddress.ip_address("10.1.2.3")).allowed


@pytest.mark.parametrize(("level", "age", "has_factors", "ip", "expected"), [
    (Level.MFA, timedelta(minutes=1), True, None, "webauthn_needs_code"),  # password + TOTP
    (Level.PASSWORD, timedelta(minutes=1), False, "10.1.2.3", "webauthn_needs_code"),
    (Level.PHISHING_RESISTANT, timedelta(minutes=6), True, None, "webauthn_needs_code"),
    (Level.PHISHING_RESISTANT, timedelta(minutes=5), True, None, "fresh_phishing_resistant"),
])
def test_a_security_key_needs_an_admin_code_or_a_fresh_key_login(
        level: Level, age: timedelta, has_factors: bool, ip: str | None,
        expected: str) -> None:
    """Issue 14 finding 3: a key can confer phishing_resistant, so a password + TOTP
    session (a real-time phisher's) never binds one; an admin code always may."""
    permit = may_enrol(kind="webauthn", session=session(level, age=age), now=NOW,
                       policy=POLICY, has_factors=has_factors,
                       ip=ipaddress.ip_address(ip) if ip else None)
    assert permit.reason == expected
    assert permit.allowed is (expected == "fresh_phishing_resistant")
    live = {"enrol_until": (NOW + timedelta(minutes=1)).isoformat()}
    assert allowed(session(Level.PASSWORD, data=live), has_factors=True, kind="webauthn")


def test_authenticated_within_is_inclusive() -> None:
    assert authenticated_within(session(age=timedelta(minutes=15)), now=NOW,
                                within=timedelta(minutes=15))
    assert not authenticated_within(session(age=timedelta(minutes=15, seconds=1)), now=NOW,
                                    within=timedelta(minutes=15))


def test_for_request_copies_who_asked_and_keeps_detail_order() -> None:
    meta = RequestMeta(client_ip="192.0.2.7", user_agent="ua\n", request_id="r1")
    event = AuditEvent.for_request(meta, "logout", Outcome.SUCCESS, "user_logout",
                                   username="alice", b="2", a="1")
    assert event == AuditEvent(event="logout", outcome=Outcome.SUCCESS, reason="user_logout",
                               username="alice", client_ip="192.0.2.7", user_agent="ua\n",
                               request_id="r1", detail=(("b", "2"), ("a", "1")))
    assert event.user_agent == "ua\\x0a"
