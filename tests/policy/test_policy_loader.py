"""load_policy_set(): strict schema, every error at once with file:line, warnings, digest."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest

from authgate.core.values import Level
from authgate.policy import PolicyError
from authgate.policy.files import compute_digest, load_policy_set
from authgate.policy.globals import PolicyGlobals
from tests.policy.helpers import BASELINE, GLOBALS, write

BAD_RULES = """\
version: 1
rules:
  - id: bad-regex
    paths: ['(unclosed']
    level: mfa
  - id: bad-cidr
    networks: [10.0.0.0/33, 10.1.2.3/8]
    level: mfa
  - id: unknown-net
    networks: [nowhere]
    level: mfa
  - id: bad-tz
    hours: [{from: "07:00", to: "19:00", tz: Mars/Olympus}]
    level: mfa
  - id: bad-duration
    max_session_age: 12 hours
    level: mfa
  - id: unknown-key
    domian: [x.test]
    level: mfa
  - id: bad-level
    level: admin
  - id: dup
    level: mfa
  - id: dup
    level: mfa
  - id: Bad_ID!
    level: mfa
  - level: mfa
  - id: bad-types
    domains: x.test
    methods: [GET, 1]
    match_query: "yes"
    level: mfa
  - id: bad-subject
    subjects: [admin, "user:"]
    level: mfa
  - id: bad-hours
    hours: [{days: [funday], from: "25:00", to: "07:00"}]
    level: mfa
  - id: bypass-with-age
    level: bypass
    idle_timeout: 5m
  - id: empty-list
    paths: []
    level: mfa
  - id: bad-domain
    domains: ["*.*.city.test", "a b"]
    level: mfa
"""

GLOBALS_BAD = """\
version: 1
sessions:
  caps: {mfa: {max_agee: 1h, idle_timeout: 5m}}
regulation: {max_failures_per_user: 500}
bogus: 1
networks_x: 1
roles: {admin_groups: [ops], auditor_groups: [ops]}
factors: {totp: {algorithm: MD5}}
enrolment: {first_enrolment_networks: [moon]}
defaults: {tz: Nowhere/Zone}
"""

# (file, line, label, message fragment): every one must be reported by a single load.
EXPECTED = [
    ("10-bad.yaml", 4, "bad-regex", "bad regular expression '(unclosed'"),
    ("10-bad.yaml", 7, "bad-cidr", "'10.0.0.0/33' is neither"),
    ("10-bad.yaml", 7, "bad-cidr", "'10.1.2.3/8' is neither"),
    ("10-bad.yaml", 10, "unknown-net", "'nowhere' is neither a defined network"),
    ("10-bad.yaml", 13, "bad-tz", "unknown time zone 'Mars/Olympus'"),
    ("10-bad.yaml", 16, "bad-duration", "max_session_age: expected a positive duration"),
    ("10-bad.yaml", 19, "unknown-key", "unknown key 'domian'"),
    ("10-bad.yaml", 22, "bad-level", "level 'admin' is not one of"),
    ("10-bad.yaml", 25, "dup", "duplicate rule id (first defined at"),
    ("10-bad.yaml", 27, "rules[9]", "must be a lower-case slug"),
    ("10-bad.yaml", 29, "rules[10]", "missing required key 'id'"),
    ("10-bad.yaml", 31, "bad-types", "domains: expected a list"),
    ("10-bad.yaml", 32, "bad-types", "methods: expected a string, got int '1'"),
    ("10-bad.yaml", 33, "bad-types", "match_query: expected true or false"),
    ("10-bad.yaml", 36, "bad-subject", "'admin' must be user:NAME or group:NAME"),
    ("10-bad.yaml", 36, "bad-subject", "'user:' must be user:NAME or group:NAME"),
    ("10-bad.yaml", 39, "bad-hours", "day 'funday'"),
    ("10-bad.yaml", 39, "bad-hours", "'25:00' is not a time"),
    ("10-bad.yaml", 41, "bypass-with-age", "idle_timeout has no effect on a bypass rule"),
    ("10-bad.yaml", 45, "empty-list", "paths: empty list"),
    ("10-bad.yaml", 48, "bad-domain", "'*.*.city.test' is not a host name"),
    ("10-bad.yaml", 48, "bad-domain", "'a b' is not a host name"),
    ("20-top.yaml", 2, "-", "unknown key 'rulez'"),
    ("30-dup-section.yaml", 2, "networks", "section 'networks' already defined at"),
    ("40-syntax.yaml", 4, "-", "YAML: expected"),
    ("50-version.yaml", 1, "version", "outside 1..1"),
    ("60-noversion.yaml", 1, "-", "missing required key 'version'"),
    ("70-globals-bad.yaml", 3, "sessions.caps.mfa", "unknown key 'max_agee'"),
    ("70-globals-bad.yaml", 5, "-", "unknown key 'bogus'"),
    ("70-globals-bad.yaml", 4, "regulation.max_failures_per_user", "500 is outside 1..100"),
    ("70-globals-bad.yaml", 6, "-", "unknown key 'networks_x'"),
    ("70-globals-bad.yaml", 7, "roles", "hold both admin and auditor roles"),
    ("70-globals-bad.yaml", 8, "factors.totp.algorithm", "'MD5' is not one of"),
    ("70-globals-bad.yaml", 9, "enrolment.first_enrolment_networks", "unknown network 'moon'"),
    ("70-globals-bad.yaml", 10, "defaults.tz", "unknown time zone 'Nowhere/Zone'"),
    ("80-dupkey.yaml", 5, "-", "duplicate key 'rules'"),
]


@pytest.fixture
def broken_dir(tmp_path: Path) -> Path:
    return write(
        tmp_path / "p",
        {
            "00-globals.yaml": "version: 1\nnetworks: {city-lan: [10.0.0.0/8]}\n",
            "10-bad.yaml": BAD_RULES,
            "20-top.yaml": "version: 1\nrulez: []\n",
            "30-dup-section.yaml": "version: 1\nnetworks: {lan: [10.0.0.0/8]}\n",
            "40-syntax.yaml": "version: 1\nrules:\n  - id: [unclosed\n",
            "50-version.yaml": "version: 2\n",
            "60-noversion.yaml": "rules: []\n",
            "70-globals-bad.yaml": GLOBALS_BAD,
            "80-dupkey.yaml": "version: 1\nrules:\n  - id: ok-rule\n    level: mfa\nrules: []\n",
        },
    )


def test_every_error_is_reported_at_once(broken_dir: Path) -> None:
    with pytest.raises(PolicyError) as info:
        load_policy_set(broken_dir)
    problems = info.value.problems
    for file, line, label, fragment in EXPECTED:
        prefix = f"{broken_dir / file}:{line} {label}: "
        assert any(p.startswith(prefix) and fragment in p for p in problems), (
            prefix,
            fragment,
            problems,
        )
    assert all(re.match(r"^\S+:\d+ \S+: .+", p) for p in problems), problems


def test_bad_global_networks(tmp_path: Path) -> None:
    directory = write(
        tmp_path / "p",
        {"a.yaml": "version: 1\nnetworks:\n  lan2: [10.0.0.1/8]\n  Bad Name: [10.0.0.0/8]\n"},
    )
    with pytest.raises(PolicyError) as info:
        load_policy_set(directory)
    assert f"{directory / 'a.yaml'}:3 networks.lan2: bad CIDR '10.0.0.1/8'" in info.value.problems
    assert any(
        ":4 networks.Bad Name: network name 'Bad Name' must be a lower-case slug" in p
        for p in info.value.problems
    )


def test_error_format_for_one_rule(tmp_path: Path) -> None:
    directory = write(
        tmp_path / "p",
        {"a.yaml": "version: 1\nrules:\n  - id: x\n    level: mfa\n    paths: ['[']\n"},
    )
    with pytest.raises(PolicyError) as info:
        load_policy_set(directory)
    assert info.value.problems[0].startswith(
        f"{directory / 'a.yaml'}:5 x: paths: bad regular expression"
    )


def test_directory_problems(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="not found"):
        load_policy_set(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(PolicyError, match="no policy files"):
        load_policy_set(tmp_path / "empty")
    write(tmp_path / "yml", {"a.yaml": "version: 1\nrules: []\n", "b.yml": "version: 1\n"})
    with pytest.raises(PolicyError, match=r"b\.yml:0 -: policy files must end in \.yaml"):
        load_policy_set(tmp_path / "yml")
    write(tmp_path / "empty-file", {"a.yaml": ""})
    with pytest.raises(PolicyError, match="file is empty"):
        load_policy_set(tmp_path / "empty-file")
    write(tmp_path / "latin1", {})
    (tmp_path / "latin1" / "a.yaml").write_bytes(b"version: 1\n# caf\xe9\n")
    with pytest.raises(PolicyError, match="not UTF-8"):
        load_policy_set(tmp_path / "latin1")


def test_merge_keys_and_unquoted_times(make_policies) -> None:
    ps = make_policies("""
        - id: unquoted
          hours: [{from: 07:00, to: 19:00}]
          level: mfa
    """)
    assert ps.rules[0].hours[0].start == 7 * 60
    with pytest.raises(PolicyError, match="got merge '<<'"):
        make_policies("""
            - &base {id: a, level: mfa}
            - <<: *base
              id: b
        """)


SHADOWING_RULES = """
        - id: all-city
          domains: ["*.city.test"]
          level: mfa
        - id: one-app
          domains: [permits.city.test]
          level: password
        - id: deeper-wildcard
          domains: ["*.x.city.test"]
          paths: ['^/a']
          level: mfa
        - id: bare-parent
          domains: [city.test]
          level: mfa
        - id: group-rule
          domains: [other.test]
          subjects: ["group:A"]
          level: mfa
        - id: group-and-rule
          domains: [other.test]
          subjects: [[group:A, group:B]]
          networks: [city-lan]
          level: mfa
        - id: net-rule
          domains: [net.test]
          networks: [10.0.0.0/8]
          level: mfa
        - id: net-narrower
          domains: [net.test]
          networks: [10.1.0.0/16]
          methods: [GET]
          level: deny
        - id: net-other
          domains: [net.test]
          networks: [vpn]
          level: deny
        - id: long-mfa
          domains: [long.test]
          level: mfa
          max_session_age: 13h
          idle_timeout: 45m
        - id: long-aal3
          domains: [long3.test]
          level: phishing_resistant
          idle_timeout: 20m
        - id: ok-aal3
          domains: [ok3.test]
          level: phishing_resistant
          max_session_age: 12h
          idle_timeout: 15m
        - id: catch-all
          level: deny
        - id: after-catch-all
          domains: [late.test]
          level: mfa
"""


def _without(rules: str, ids: set[str]) -> str:
    """``rules`` less the rules with these ids (each rule starts with ``- id:``)."""
    blocks = re.split(r"(?m)^(?=\s*- id: )", rules)
    return "".join(b for b in blocks
                   if not any(re.match(rf"\s*- id: {i}\s*$", b.splitlines()[0] if b.strip()
                                       else "") for i in ids))


def test_shadowed_rules_are_errors_and_nist_caps_warn(make_policies) -> None:
    with pytest.raises(PolicyError) as refused:
        make_policies(SHADOWING_RULES)
    shadowed = {
        re.search(r" (\S+): shadowed by earlier rule (\S+)", w).groups()
        for w in refused.value.problems
        if "shadowed" in w
    }
    assert shadowed == {
        ("one-app", "all-city"),
        ("deeper-wildcard", "all-city"),
        ("group-and-rule", "group-rule"),
        ("net-narrower", "net-rule"),
        ("after-catch-all", "catch-all"),
    }
    ps = make_policies(_without(SHADOWING_RULES, {rule for rule, _ in shadowed}))
    text = "\n".join(ps.warnings)
    assert "shadowed by" not in text
    assert "long-mfa: max_session_age 13h exceeds the NIST SP 800-63B cap 12h for mfa" in text
    assert "long-mfa: idle_timeout 45m exceeds" in text
    assert (
        "long-aal3: idle_timeout 20m exceeds the NIST SP 800-63B cap 15m for phishing_resistant"
        in text
    )
    assert "ok-aal3" not in text and "bare-parent" not in text and "net-other" not in text
    assert all(re.match(r"^\S+:\d+ \S+: .+", w) for w in ps.warnings)


def test_global_caps_looser_than_nist_warn(make_policies) -> None:
    ps = make_policies(
        "- {id: a, level: mfa}\n",
        GLOBALS + "sessions:\n  caps:\n    phishing_resistant: {max_age: 12h, idle_timeout: 1h}\n",
    )
    assert any("sessions.caps.phishing_resistant: looser than the NIST" in w for w in ps.warnings)
    assert ps.settings.sessions.caps[Level.PHISHING_RESISTANT].idle_timeout == timedelta(hours=1)
    assert ps.settings.sessions.caps[Level.MFA].idle_timeout == timedelta(minutes=30)


def test_settings_defaults_when_sections_absent(tmp_path: Path) -> None:
    ps = load_policy_set(write(tmp_path / "p", {"a.yaml": "version: 1\nrules: []\n"}))
    s = ps.settings
    assert s == PolicyGlobals() and dict(s.networks) == {}
    assert s.roles.admin_groups == frozenset() and s.roles.auditor_groups == frozenset()
    assert s.sessions.caps[Level.PASSWORD].max_age == timedelta(hours=12)
    assert s.sessions.caps[Level.PHISHING_RESISTANT].idle_timeout == timedelta(minutes=15)
    assert s.sessions.refresh_interval == timedelta(minutes=5)
    r = s.regulation
    assert (
        r.max_failures_per_user,
        r.max_failures_per_ip,
        r.window,
        r.ban_time,
        r.ban_escalation,
        r.spray_distinct_users,
        r.second_factor_max_failures,
    ) == (5, 20, timedelta(minutes=15), timedelta(minutes=15), 2, 10, 5)
    assert (
        s.enrolment.code_ttl,
        s.enrolment.first_enrolment_networks,
        s.enrolment.fresh_auth_for_new_factor,
    ) == (timedelta(hours=24), (), timedelta(minutes=5))
    assert (
        s.factors.totp.digits,
        s.factors.totp.period,
        s.factors.totp.algorithm,
        s.factors.totp.valid_window,
    ) == (6, 30, "SHA1", 1)
    w = s.factors.webauthn
    assert (w.user_verification, w.attestation, w.aaguid_allowlist, w.challenge_ttl) == (
        "preferred",
        "none",
        (),
        timedelta(minutes=2),
    )
    assert any("no rules" in warning for warning in ps.warnings)


def test_baseline_settings() -> None:
    ps = load_policy_set(BASELINE)
    s = ps.settings
    assert s.roles.admin_groups == {"authgate-admins"} and s.roles.auditor_groups == {
        "authgate-auditors"
    }
    assert {"city-lan", "vpn"} <= set(s.networks) and s.defaults.tz == "America/Toronto"
    assert ps.warnings == (), ps.warnings
    assert ps.files[0] == "00-globals.yaml" and "approvals.yaml" not in ps.files
    assert [r.position for r in ps.rules] == list(range(len(ps.rules)))


def test_digest_stability(tmp_path: Path) -> None:
    files = {"00-a.yaml": GLOBALS, "10-b.yaml": "version: 1\nrules:\n  - {id: r, level: mfa}\n"}
    one, two = write(tmp_path / "one", files), write(tmp_path / "two", files)
    digest = load_policy_set(one).digest
    assert re.fullmatch(r"[0-9a-f]{64}", digest)
    assert load_policy_set(two).digest == digest == compute_digest(one)
    (one / "approvals.yaml").write_text("- note: anything\n")
    (one / "tests").mkdir()
    (one / "tests" / "t.yaml").write_text("cases: []\n")
    assert load_policy_set(one).digest == digest, "approvals and tests are not part of the digest"
    (one / "10-b.yaml").write_text(files["10-b.yaml"] + " ")
    assert load_policy_set(one).digest != digest, "one byte changes the digest"
    (one / "10-b.yaml").write_text(files["10-b.yaml"])
    (one / "10-b.yaml").rename(one / "20-b.yaml")
    assert load_policy_set(one).digest != digest, "renaming a file changes order, so the digest"
    (one / "20-b.yaml").rename(one / "10-b.yaml")
    (one / "05-comment.yaml").write_text("version: 1\n")
    assert load_policy_set(one).digest != digest, "adding a file changes the digest"


def test_rules_concatenated_in_file_order(tmp_path: Path) -> None:
    directory = write(
        tmp_path / "p",
        {
            "20-late.yaml": "version: 1\nrules:\n  - {id: late, level: deny}\n",
            "10-early.yaml": "version: 1\nrules:\n  - {id: early, domains: [a.test], level: mfa}"
            "\n  - {id: early2, domains: [b.test], level: mfa}\n",
        },
    )
    assert [r.id for r in load_policy_set(directory).rules] == ["early", "early2", "late"]
