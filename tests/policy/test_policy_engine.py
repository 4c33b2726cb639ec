"""decide(): each criterion, combinations, order, default deny, anonymous, step-up, re-auth."""

from __future__ import annotations

import ipaddress
import re
from datetime import UTC, datetime, timedelta

import pytest

from authgate.core.values import Level, Resource
from authgate.policy import Decision, Requirement, Verdict, decide, normalize_path
from authgate.policy.engine import (
    DEFAULT_DENY,
    Request,
    ambiguous,
    literal_prefix,
    login_required_for_subjects,
    match_domains,
    match_hours,
    match_methods,
    match_networks,
    match_paths,
    match_subjects,
    outcome,
)
from authgate.policy.paths import path_problem
from tests.policy.helpers import NOW, resource, subject

RULES = r"""
- id: health
  paths: ['^/healthz$']
  level: bypass
- id: exact-host
  domains: [Exact.City.Test]
  level: password
- id: wild
  domains: ["*.wild.test"]
  level: mfa
- id: query-match
  domains: [q.test]
  paths: ['\?(.*&)?debug=1']
  match_query: true
  level: deny
- id: path-only
  domains: [q.test]
  paths: ['debug']
  level: deny
- id: q-rest
  domains: [q.test]
  level: password
- id: methods
  domains: [m.test]
  methods: [POST, delete]
  level: mfa
- id: m-rest
  domains: [m.test]
  level: password
- id: users-or-groups
  domains: [s.test]
  subjects: ["user:bob", [group:A, group:B]]
  level: password
- id: s-deny
  domains: [s.test]
  level: deny
- id: net
  domains: [n.test]
  networks: [city-lan, 192.0.2.0/24]
  level: password
- id: hours
  domains: [h.test]
  hours: [{days: [mon, tue, wed, thu, fri], from: "07:00", to: "19:00"}]
  level: password
- id: overnight
  domains: [night.test]
  hours: [{days: [fri], from: "22:00", to: "06:00", tz: UTC}]
  level: password
- id: combo
  domains: [c.test]
  subjects: ["group:Ops"]
  networks: [city-lan]
  hours: [{days: [mon, tue, wed, thu, fri], from: "08:00", to: "17:00"}]
  level: mfa
- id: combo-deny
  domains: [c.test]
  level: deny
- id: strict-age
  domains: [age.test]
  level: mfa
  max_session_age: 1h
  idle_timeout: 5m
- id: first
  domains: [order.test]
  paths: ['^/a']
  level: deny
- id: second
  domains: [order.test]
  level: password
- id: anon-deny-by-user
  domains: [anon.test]
  subjects: ["user:mallory"]
  level: deny
- id: anon-rest
  domains: [anon.test]
  level: bypass
"""


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


@pytest.fixture
def ps(make_policies):
    return make_policies(RULES)


# (case, subject kwargs, url, method, now, verdict, rule id, reason)
CASES = [
    (
        "bypass anywhere, anonymous",
        {"user": None},
        "https://x.test/healthz",
        "GET",
        NOW,
        "allow",
        "health",
        "bypass",
    ),
    (
        "bypass regex anchored",
        {"user": None},
        "https://x.test/healthz2",
        "GET",
        NOW,
        "deny",
        None,
        "default_deny",
    ),
    (
        "exact host, case-insensitive",
        {},
        "https://EXACT.city.test/",
        "GET",
        NOW,
        "allow",
        "exact-host",
        "allowed",
    ),
    (
        "exact host does not match subdomain",
        {},
        "https://a.exact.city.test/",
        "GET",
        NOW,
        "deny",
        None,
        "default_deny",
    ),
    (
        "wildcard matches subdomain",
        {},
        "https://a.wild.test/",
        "GET",
        NOW,
        "allow",
        "wild",
        "allowed",
    ),
    (
        "wildcard matches any depth",
        {},
        "https://a.b.wild.test/",
        "GET",
        NOW,
        "allow",
        "wild",
        "allowed",
    ),
    (
        "wildcard never matches bare parent",
        {},
        "https://wild.test/",
        "GET",
        NOW,
        "deny",
        None,
        "default_deny",
    ),
    (
        "wildcard not fooled by suffix",
        {},
        "https://evilwild.test/",
        "GET",
        NOW,
        "deny",
        None,
        "default_deny",
    ),
    (
        "match_query sees the query",
        {},
        "https://q.test/x?a=2&debug=1",
        "GET",
        NOW,
        "deny",
        "query-match",
        "denied_by_rule",
    ),
    (
        "paths ignore the query by default",
        {},
        "https://q.test/x?debug",
        "GET",
        NOW,
        "allow",
        "q-rest",
        "allowed",
    ),
    (
        "paths use re.search",
        {},
        "https://q.test/x/debug/y",
        "GET",
        NOW,
        "deny",
        "path-only",
        "denied_by_rule",
    ),
    ("method listed", {}, "https://m.test/", "POST", NOW, "allow", "methods", "allowed"),
    (
        "method listed lower-case",
        {},
        "https://m.test/",
        "DELETE",
        NOW,
        "allow",
        "methods",
        "allowed",
    ),
    (
        "method not listed",
        {"level": "password"},
        "https://m.test/",
        "GET",
        NOW,
        "allow",
        "m-rest",
        "allowed",
    ),
    (
        "subject by user",
        {"user": "bob", "groups": ()},
        "https://s.test/",
        "GET",
        NOW,
        "allow",
        "users-or-groups",
        "allowed",
    ),
    (
        "subject user case-insensitive",
        {"user": "BOB", "groups": ()},
        "https://s.test/",
        "GET",
        NOW,
        "allow",
        "users-or-groups",
        "allowed",
    ),
    (
        "subject AND clause",
        {"groups": ("A", "B")},
        "https://s.test/",
        "GET",
        NOW,
        "allow",
        "users-or-groups",
        "allowed",
    ),
    (
        "subject half an AND clause",
        {"groups": ("A",)},
        "https://s.test/",
        "GET",
        NOW,
        "deny",
        "s-deny",
        "denied_by_rule",
    ),
    (
        "subject anonymous needs login",
        {"user": None},
        "https://s.test/",
        "GET",
        NOW,
        "authenticate",
        "users-or-groups",
        "login_required",
    ),
    (
        "network by name",
        {"level": "password"},
        "https://n.test/",
        "GET",
        NOW,
        "allow",
        "net",
        "allowed",
    ),
    (
        "network by CIDR",
        {"ip": "192.0.2.9"},
        "https://n.test/",
        "GET",
        NOW,
        "allow",
        "net",
        "allowed",
    ),
    (
        "network IPv4-mapped IPv6",
        {"ip": "::ffff:10.9.9.9"},
        "https://n.test/",
        "GET",
        NOW,
        "allow",
        "net",
        "allowed",
    ),
    (
        "network outside",
        {"ip": "198.51.100.1"},
        "https://n.test/",
        "GET",
        NOW,
        "deny",
        None,
        "default_deny",
    ),
    (
        "network unknown ip fails closed",
        {"ip": None},
        "https://n.test/",
        "GET",
        NOW,
        "deny",
        None,
        "default_deny",
    ),
    (
        "hours inside",
        {},
        "https://h.test/",
        "GET",
        utc("2026-01-05T07:00:00-05:00"),
        "allow",
        "hours",
        "allowed",
    ),
    (
        "hours end exclusive",
        {},
        "https://h.test/",
        "GET",
        utc("2026-01-05T19:00:00-05:00"),
        "deny",
        None,
        "default_deny",
    ),
    (
        "hours weekend",
        {},
        "https://h.test/",
        "GET",
        utc("2026-01-10T12:00:00-05:00"),
        "deny",
        None,
        "default_deny",
    ),
    (
        "DST spring: 07:30 EDT Monday",
        {},
        "https://h.test/",
        "GET",
        utc("2026-03-09T11:30:00+00:00"),
        "allow",
        "hours",
        "allowed",
    ),
    (
        "DST spring: 06:30 EST week before",
        {},
        "https://h.test/",
        "GET",
        utc("2026-03-02T11:30:00+00:00"),
        "deny",
        None,
        "default_deny",
    ),
    (
        "DST fall: 18:30 EST Monday",
        {},
        "https://h.test/",
        "GET",
        utc("2026-11-02T23:30:00+00:00"),
        "allow",
        "hours",
        "allowed",
    ),
    (
        "DST fall: 19:30 EDT week before",
        {},
        "https://h.test/",
        "GET",
        utc("2026-10-26T23:30:00+00:00"),
        "deny",
        None,
        "default_deny",
    ),
    (
        "UTC Tuesday is still Monday in Toronto",
        {},
        "https://h.test/",
        "GET",
        utc("2026-01-06T00:30:00+00:00"),
        "deny",
        None,
        "default_deny",
    ),
    (
        "overnight opens Friday",
        {},
        "https://night.test/",
        "GET",
        utc("2026-01-09T23:00:00+00:00"),
        "allow",
        "overnight",
        "allowed",
    ),
    (
        "overnight continues Saturday",
        {},
        "https://night.test/",
        "GET",
        utc("2026-01-10T05:59:00+00:00"),
        "allow",
        "overnight",
        "allowed",
    ),
    (
        "overnight closed Saturday 06:00",
        {},
        "https://night.test/",
        "GET",
        utc("2026-01-10T06:00:00+00:00"),
        "deny",
        None,
        "default_deny",
    ),
    (
        "overnight not Thursday night",
        {},
        "https://night.test/",
        "GET",
        utc("2026-01-08T23:00:00+00:00"),
        "deny",
        None,
        "default_deny",
    ),
    (
        "combo all match",
        {"groups": ("Ops",)},
        "https://c.test/",
        "GET",
        NOW,
        "allow",
        "combo",
        "allowed",
    ),
    (
        "combo wrong group",
        {"groups": ("Dev",)},
        "https://c.test/",
        "GET",
        NOW,
        "deny",
        "combo-deny",
        "denied_by_rule",
    ),
    (
        "combo wrong network",
        {"groups": ("Ops",), "ip": "198.51.100.1"},
        "https://c.test/",
        "GET",
        NOW,
        "deny",
        "combo-deny",
        "denied_by_rule",
    ),
    (
        "combo wrong hour",
        {"groups": ("Ops",)},
        "https://c.test/",
        "GET",
        utc("2026-01-05T17:00:00-05:00"),
        "deny",
        "combo-deny",
        "denied_by_rule",
    ),
    (
        "combo anonymous",
        {"user": None},
        "https://c.test/",
        "GET",
        NOW,
        "authenticate",
        "combo",
        "login_required",
    ),
    (
        "combo anonymous off-network skips to deny",
        {"user": None, "ip": "198.51.100.1"},
        "https://c.test/",
        "GET",
        NOW,
        "deny",
        "combo-deny",
        "denied_by_rule",
    ),
    (
        "first match wins",
        {},
        "https://order.test/abc",
        "GET",
        NOW,
        "deny",
        "first",
        "denied_by_rule",
    ),
    ("order falls through", {}, "https://order.test/b", "GET", NOW, "allow", "second", "allowed"),
    (
        "default deny unknown host",
        {"level": "phishing_resistant"},
        "https://nowhere.test/",
        "GET",
        NOW,
        "deny",
        None,
        "default_deny",
    ),
    (
        "anonymous must log in before a deny-by-user rule",
        {"user": None},
        "https://anon.test/",
        "GET",
        NOW,
        "authenticate",
        "anon-deny-by-user",
        "login_required",
    ),
    (
        "known user passes a deny-by-user rule",
        {},
        "https://anon.test/",
        "GET",
        NOW,
        "allow",
        "anon-rest",
        "bypass",
    ),
    (
        "deny-by-user applies",
        {"user": "mallory"},
        "https://anon.test/",
        "GET",
        NOW,
        "deny",
        "anon-deny-by-user",
        "denied_by_rule",
    ),
    (
        "anonymous on a password rule",
        {"user": None},
        "https://exact.city.test/",
        "GET",
        NOW,
        "authenticate",
        "exact-host",
        "login_required",
    ),
    (
        "step up password to mfa",
        {"level": "password"},
        "https://a.wild.test/",
        "GET",
        NOW,
        "authenticate",
        "wild",
        "step_up",
    ),
    (
        "higher level satisfies lower",
        {"level": "phishing_resistant"},
        "https://exact.city.test/",
        "GET",
        NOW,
        "allow",
        "exact-host",
        "allowed",
    ),
    (
        "global cap age",
        {"auth_age": timedelta(hours=12, seconds=1)},
        "https://a.wild.test/",
        "GET",
        NOW,
        "authenticate",
        "wild",
        "reauth_age",
    ),
    (
        "global cap age boundary",
        {"auth_age": timedelta(hours=12)},
        "https://a.wild.test/",
        "GET",
        NOW,
        "allow",
        "wild",
        "allowed",
    ),
    (
        "global cap idle",
        {"idle": timedelta(minutes=31)},
        "https://a.wild.test/",
        "GET",
        NOW,
        "authenticate",
        "wild",
        "reauth_idle",
    ),
    (
        "rule age",
        {"auth_age": timedelta(minutes=61)},
        "https://age.test/",
        "GET",
        NOW,
        "authenticate",
        "strict-age",
        "reauth_age",
    ),
    (
        "rule idle",
        {"idle": timedelta(minutes=6)},
        "https://age.test/",
        "GET",
        NOW,
        "authenticate",
        "strict-age",
        "reauth_idle",
    ),
    (
        "too old beats step up",
        {"level": "password", "auth_age": timedelta(hours=2)},
        "https://age.test/",
        "GET",
        NOW,
        "authenticate",
        "strict-age",
        "reauth_age",
    ),
    (
        "dot segments are refused before any rule (issue #14: back ends disagree on them)",
        {"user": None},
        "https://x.test/public/../healthz",
        "GET",
        NOW,
        "deny",
        None,
        "ambiguous_path",
    ),
]


@pytest.mark.parametrize(
    ("name", "who", "url", "method", "now", "verdict", "rule_id", "reason"),
    CASES,
    ids=[c[0] for c in CASES],
)
def test_decide_table(ps, name, who, url, method, now, verdict, rule_id, reason):
    decision = decide(ps, subject=subject(now=now, **who), resource=resource(url, method), now=now)
    assert (decision.verdict.value, decision.rule_id, decision.reason) == (verdict, rule_id, reason)


def test_required_levels_and_limits(ps):
    d = decide(
        ps, subject=subject(level="password"), resource=resource("https://age.test/"), now=NOW
    )
    assert d.required is Level.MFA
    assert (d.max_session_age, d.idle_timeout) == (timedelta(hours=1), timedelta(minutes=5))
    d = decide(ps, subject=subject(), resource=resource("https://a.wild.test/"), now=NOW)
    assert (d.max_session_age, d.idle_timeout) == (timedelta(hours=12), timedelta(minutes=30))
    d = decide(ps, subject=subject(user=None), resource=resource("https://x.test/healthz"), now=NOW)
    assert d.required is Level.NONE and d.max_session_age is None
    d = decide(ps, subject=subject(user=None), resource=resource("https://anon.test/"), now=NOW)
    assert d.required is Level.PASSWORD, "a deny-by-user rule asks for a password login first"
    d = decide(ps, subject=subject(), resource=resource("https://nowhere.test/"), now=NOW)
    assert d == Decision(Verdict.DENY, None, None, "default_deny", d.reasons) and d.reasons


def test_missing_session_times_fail_closed(ps):
    base = subject()
    for broken in (dict(auth_time=None), dict(last_seen=None)):
        d = decide(
            ps,
            subject=base.__class__(**{**base.__dict__, **broken}),
            resource=resource("https://a.wild.test/"),
            now=NOW,
        )
        assert d.verdict is Verdict.AUTHENTICATE


def test_naive_now_is_refused(ps):
    with pytest.raises(ValueError):
        decide(
            ps,
            subject=subject(),
            resource=resource("https://a.wild.test/"),
            now=datetime(2026, 1, 5, 12),
        )


def test_requirement_levels():
    assert Requirement.BYPASS.level is Level.NONE
    assert Requirement.PHISHING_RESISTANT.level is Level.PHISHING_RESISTANT
    assert Requirement.DENY.level is None
    assert Requirement("mfa") is Requirement.MFA and Verdict("authenticate") is Verdict.AUTHENTICATE


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("/a/b", "/a/b"),
        ("", "/"),
        ("a", "/a"),
        ("/public/../admin", "/admin"),
        ("/public/%2e%2e/admin", "/admin"),
        ("/public/%2E%2e/admin", "/admin"),
        ("//admin", "/admin"),
        ("/./admin/.", "/admin/"),
        ("/..", "/"),
        ("/a/b/..", "/a/"),
        ("\\admin", "/admin"),
        ("/%61dmin", "/admin"),
        ("/a%2Fb", "/a%2Fb"),
        ("/a%20b", "/a%20b"),
        ("/a/..b/c", "/a/..b/c"),
    ],
)
def test_normalize_path(raw, expected):
    assert normalize_path(raw) == expected
    assert normalize_path(expected) == expected


def reference_decide(ps, subject, resource, now):
    """decide() without any index: every rule, every criterion, in order."""
    problem = path_problem(resource.path)
    if problem is not None:
        return ambiguous(problem)
    req = Request(subject, resource, now)
    for rule in ps.rules:
        if not all(
            m(rule, req)
            for m in (match_domains, match_methods, match_paths, match_networks, match_hours)
        ):
            continue
        if rule.subjects is not None:
            if req.anonymous:
                return login_required_for_subjects(rule)
            if not match_subjects(rule, req):
                continue
        return outcome(ps, rule, subject, now)
    return DEFAULT_DENY


INDEX_RULES = (
    RULES
    + r"""
- id: prefix-app
  paths: ['^/app1/', '\A/app2(/|$)']
  level: mfa
- id: prefix-ci
  paths: ['(?i)^/CI/']
  level: password
- id: prefix-alt
  paths: ['^/alt|/other']
  level: mfa
- id: prefix-query
  paths: ['^/q\?x']
  match_query: true
  level: deny
- id: prefix-short
  paths: ['^/a']
  methods: [PUT]
  level: deny
- id: prefix-ci-secure
  paths: ['(?i)^/Secure/', '(?i)^/key']
  level: deny
- id: prefix-ci-i
  paths: ['(?i)^/i$']
  level: deny
"""
)


def test_index_agrees_with_a_full_scan(make_policies):
    ps = make_policies(INDEX_RULES)
    hosts = [
        "exact.city.test",
        "a.wild.test",
        "wild.test",
        "x.y.wild.test",
        "q.test",
        "nowhere",
        "c.test",
        "s.test",
        "order.test",
        "anon.test",
        "test",
        "a..wild.test",
        "EXACT.CITY.TEST.",
    ]
    paths = [
        "/",
        "/healthz",
        "/app1/x",
        "/app2",
        "/app2x",
        "/app3/",
        "/ci/x",
        "/CI/x",
        "/alt",
        "/x/other",
        "/q",
        "/a",
        "/abc",
        "/public/../app1/",
        "/x?debug=1",
        "/secure/x",
        "/SECURE/x",
        "/sEcUrE/",
        "/\u017fecure/x",  # long s: IGNORECASE matches it to s
        "/\u212aey",  # Kelvin sign: matches k
        "/KEY",
        "/i",
        "/\u0130",  # dotted capital I
        "/\u0131",  # dotless i
        "/\u00e9secure/",
    ]
    for host in hosts:
        for path in paths:
            for method in ("GET", "PUT"):
                for who in ({}, {"user": None}, {"user": "mallory"}, {"groups": ("A", "B", "Ops")}):
                    res = Resource(
                        "https", host, path.split("?")[0], method, query=path.partition("?")[2]
                    )
                    got = decide(ps, subject=subject(**who), resource=res, now=NOW)
                    assert got == reference_decide(ps, subject(**who), res, NOW), (
                        host,
                        path,
                        method,
                        who,
                    )


def test_case_insensitive_prefixes_are_indexed_and_still_decided_like_a_scan(make_policies):
    """Issue 20 item 4: ``(?i)`` rules are indexed (ASCII lower case), not scanned; a path
    that starts with a non-ASCII character IGNORECASE folds to ASCII still reaches them."""
    ps = make_policies(INDEX_RULES)
    assert literal_prefix(re.compile("(?i)^/Secure/"), ignore_case=True) == "/Secure/"
    positions = {rule.id for rule, _ in ps.index.candidates("nowhere", "/elsewhere")}
    assert "prefix-ci-secure" not in positions and "prefix-ci" not in positions
    for path in ("/SeCuRe/a", "/kEy", "/\u017fecure/", "/\u212aey"):
        assert "prefix-ci-secure" in {r.id for r, _ in ps.index.candidates("nowhere", path)}


def test_literal_prefixes():
    cases = {
        "^/app1/": "/app1/",
        r"\A/x": "/x",
        "^/ab*c": "/a",
        "(?i)^/admin": None,
        "^/a|/b": None,
        "/x": None,
        "(?m)^/x": None,
        "^[/]x": "/x",
        "^/payments/approve(/|$)": "/payments/approve",
    }
    for text, expected in cases.items():
        assert literal_prefix(re.compile(text)) == expected, text


def test_index_cache_is_bounded(ps):
    for i in range(5000):
        ps.index.candidates(f"h{i}.wild.test", "/")
    assert len(ps.index._cache) <= 4096


def test_subject_is_frozen_and_anonymous_flag():
    s = subject(user=None)
    assert s.anonymous
    with pytest.raises(AttributeError):
        s.username = "x"  # type: ignore[misc]
    assert ipaddress.ip_address("10.1.2.3") == subject().ip


@pytest.mark.parametrize("path", [
    "/public/..%2fforbidden/secret", "/public/..%2Fforbidden", "/public/%5c..%5cforbidden",
    "/public/..;/forbidden/secret", "/public/.;/x", "/public/%252e%252e/forbidden",
    "/public/x%00.html",
])
def test_ambiguous_paths_are_denied_before_any_rule(path: str) -> None:
    from datetime import datetime
    from pathlib import Path

    from authgate.core.values import Resource
    from authgate.policy import Subject, Verdict, decide
    from authgate.policy.files import load_policy_set

    ps = load_policy_set(Path(__file__).resolve().parents[2] / "policies")
    decision = decide(ps, subject=Subject(), now=datetime(2026, 1, 5, tzinfo=UTC),
                      resource=Resource("http", "localhost", path, "GET"))
    assert (decision.verdict, decision.reason) == (Verdict.DENY, "ambiguous_path")
