"""Property (issue 19 item 3): a report-only rule never changes a decision.

Inserting one (random criteria, random level) at any position of a policy (random rules, or
the shipped baseline) leaves every request's verdict, deciding rule, reason and required
level unchanged; the only difference is the ``report_only`` entry, present exactly when the
inserted rule matched before the deciding one.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import replace
from datetime import timedelta
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from authgate.core.values import Resource
from authgate.policy import PolicySet, Requirement, Rule, decide
from authgate.policy.engine import RuleIndex
from authgate.policy.files import load_policy_set
from authgate.policy.values import HoursWindow
from tests.policy.helpers import BASELINE, NOW, subject

BASE = load_policy_set(BASELINE)
HOSTS = ("permits.city.test", "payroll.city.test", "auth.city.test", "localhost", "x.test")
PATHS = ("/", "/admin/x", "/healthz", "/api/v1", "/Manage", "/public/a")
TZ = ZoneInfo("America/Toronto")
NETS = (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("192.0.2.0/24"))


def _maybe(strategy: st.SearchStrategy) -> st.SearchStrategy:
    return st.none() | strategy


@st.composite
def rules(draw: st.DrawFn, rule_id: str) -> Rule:
    domains = draw(_maybe(st.lists(st.sampled_from(("*.city.test", *HOSTS)), min_size=1,
                                   max_size=2, unique=True)))
    paths = draw(_maybe(st.lists(st.sampled_from(("^/admin", "^/healthz$", "(?i)manage", "api")),
                                 min_size=1, max_size=2, unique=True)))
    subjects = draw(_maybe(st.lists(st.frozensets(st.tuples(
        st.sampled_from(("user", "group")), st.sampled_from(("alice", "city-staff", "hr"))),
        min_size=1, max_size=2), min_size=1, max_size=2)))
    hours = draw(_maybe(st.lists(st.builds(
        lambda days, start, length: HoursWindow(frozenset(days), start, (start + length) % 1440
                                                or 1440, TZ, "random"),
        st.sets(st.integers(0, 6), min_size=1), st.integers(0, 1439),
        st.integers(1, 1439)), min_size=1, max_size=2)))
    exact = tuple(d for d in domains or () if not d.startswith("*."))
    return Rule(
        id=rule_id, position=0, source="random:1", description="",
        level=draw(st.sampled_from(list(Requirement))),
        domains=tuple(domains or ()), exact_hosts=frozenset(exact),
        wildcard_parents=tuple(d[2:] for d in domains or () if d.startswith("*.")),
        paths=tuple(re.compile(p) for p in paths or ()),
        methods=draw(_maybe(st.frozensets(st.sampled_from(("GET", "POST")), min_size=1))),
        subjects=tuple(subjects) if subjects is not None else None,
        networks=draw(_maybe(st.lists(st.sampled_from(NETS), min_size=1, max_size=2)
                             .map(tuple))),
        hours=tuple(hours) if hours is not None else None,
        max_session_age=draw(_maybe(st.sampled_from((timedelta(minutes=20), timedelta(hours=8))))),
    )


@st.composite
def requests(draw: st.DrawFn) -> tuple:
    user = draw(st.sampled_from((None, "alice", "bob")))
    who = subject(user=user, groups=tuple(draw(st.sets(st.sampled_from(
        ("City-Staff", "HR", "IT-Dept"))))), level=draw(st.sampled_from(
            ("password", "mfa", "phishing_resistant"))),
        ip=draw(st.sampled_from(("10.1.2.3", "192.0.2.7", "203.0.113.5"))),
        auth_age=timedelta(minutes=draw(st.integers(1, 800))),
        idle=timedelta(minutes=draw(st.integers(0, 40))))
    where = Resource("https", draw(st.sampled_from(HOSTS)), draw(st.sampled_from(PATHS)),
                     draw(st.sampled_from(("GET", "POST"))))
    return who, where, NOW + timedelta(minutes=draw(st.integers(0, 7 * 1440)))


def _policy(rule_list: list[Rule]) -> PolicySet:
    placed = [replace(rule, position=i) for i, rule in enumerate(rule_list)]
    return replace(BASE, rules=tuple(placed), index=RuleIndex(placed))


def _key(decision) -> tuple:
    return (decision.verdict, decision.rule_id, decision.reason, decision.required,
            decision.max_session_age, decision.idle_timeout)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(base=st.one_of(st.just(list(BASE.rules)),
                      st.lists(st.integers(), max_size=6).flatmap(
                          lambda ids: st.tuples(*(rules(f"r{i}") for i in range(len(ids))))
                          .map(list))),
       trial=rules("trial"), data=st.data(),
       asked=st.lists(requests(), min_size=1, max_size=8))
def test_inserting_a_report_only_rule_anywhere_changes_no_decision(base, trial, data,
                                                                   asked) -> None:
    at = data.draw(st.integers(0, len(base)), label="position")
    before = _policy(base)
    after = _policy([*base[:at], replace(trial, report_only=True), *base[at:]])
    for who, where, now in asked:
        old = decide(before, subject=who, resource=where, now=now)
        new = decide(after, subject=who, resource=where, now=now)
        assert _key(new) == _key(old)
        assert [r for r, _ in new.report_only] in ([], ["trial"])
