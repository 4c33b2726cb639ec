"""Policy test tables: the shipped baseline's tables pass and cover every rule; bad tables fail."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from authgate.policy import PolicyError
from authgate.policy.files import load_policy_set
from authgate.policy.files.cases import load_cases, run_cases, uncovered_rules
from tests.policy.helpers import BASELINE, write


@pytest.fixture(scope="module")
def baseline():
    return load_policy_set(BASELINE)


def _ids(results):
    return [r.case.name for r in results]


def test_baseline_tables_pass(baseline) -> None:
    results = run_cases(baseline, BASELINE / "tests")
    failures = [f"{r.case.source} {r.case.name}: {r.message}" for r in results if not r.passed]
    assert not failures, "\n".join(failures)
    assert len(results) >= 40


def test_baseline_tables_cover_every_rule_and_default_deny(baseline) -> None:
    results = run_cases(baseline, BASELINE / "tests")
    assert uncovered_rules(baseline, results) == []
    assert any(r.case.rule is None for r in results), "the default deny is exercised"
    verdicts = {r.decision.reason for r in results}
    assert {
        "bypass",
        "allowed",
        "login_required",
        "step_up",
        "reauth_age",
        "reauth_idle",
        "denied_by_rule",
        "default_deny",
    } <= verdicts


def test_integration_contract_for_localhost(baseline) -> None:
    """The web integration tests rely on exactly these three localhost behaviours."""
    from authgate.policy import decide
    from tests.policy.helpers import NOW, resource, subject

    anon = subject(user=None)
    assert (
        decide(
            baseline, subject=anon, resource=resource("http://localhost/public/x"), now=NOW
        ).reason
        == "bypass"
    )
    assert (
        decide(
            baseline,
            subject=subject(level="password"),
            resource=resource("http://localhost/forbidden/x"),
            now=NOW,
        ).verdict.value
        == "deny"
    )
    d = decide(baseline, subject=anon, resource=resource("http://localhost/anything"), now=NOW)
    assert (d.verdict.value, d.required.value) == ("authenticate", "password")
    d = decide(
        baseline,
        subject=subject(groups=(), level="password", ip="127.0.0.1"),
        resource=resource("http://localhost/anything"),
        now=NOW,
    )
    assert d.verdict.value == "allow"


def test_failing_case_is_reported(tmp_path: Path, baseline) -> None:
    cases = write(
        tmp_path / "t",
        {
            "x.yaml": """\
        cases:
          - name: wrong expectation
            request: {url: "https://permits.city.test/"}
            expect: {verdict: allow, rule: staff-apps, reason: allowed}
          - name: right expectation
            request: {url: "https://permits.city.test/"}
            expect: {verdict: authenticate, rule: staff-apps}
        """
        },
    )
    results = run_cases(baseline, cases)
    assert [r.passed for r in results] == [False, True]
    assert results[0].message == (
        "verdict authenticate (expected allow); reason login_required (expected allowed)"
    )
    assert results[0].case.source.endswith("x.yaml:2")


def test_malformed_cases_report_every_problem(tmp_path: Path, baseline) -> None:
    cases = write(
        tmp_path / "t",
        {
            "x.yaml": """\
        at: "2026-01-05T10:00:00"
        cases:
          - name: typo in rule id
            request: {url: "https://permits.city.test/"}
            expect: {verdict: allow, rule: staff-app}
          - name: bad values
            subject: {user: a, level: root, ip: 999.1.1.1, auth_age: soon, colour: red}
            request: {url: "permits.city.test/"}
            expect: {verdict: maybe, rule: default, reason: because}
        """
        },
    )
    with pytest.raises(PolicyError) as info:
        load_cases(cases, baseline)
    text = "\n".join(info.value.problems)
    for fragment in [
        "x.yaml:1 -: at: '2026-01-05T10:00:00' is not an ISO 8601 time with an offset",
        "x.yaml:5 typo in rule id: rule: no rule with id 'staff-app'",
        "x.yaml:7 bad values: unknown key 'colour'",
        "level: 'root' is not one of",
        "ip: '999.1.1.1' is not an IP address",
        "auth_age: expected a positive duration",
        "'permits.city.test/' is not an absolute http(s) URL",
        "verdict: 'maybe' is not one of",
        "reason: 'because' is not one of",
    ]:
        assert fragment in text, (fragment, text)


def test_policy_change_is_caught_by_the_tables(tmp_path: Path) -> None:
    """A reviewer sees what a change does: loosening staff apps to password fails the tables."""
    directory = tmp_path / "policies"
    shutil.copytree(BASELINE, directory, ignore=shutil.ignore_patterns("approvals.yaml"))
    staff = directory / "40-staff-apps.yaml"
    staff.write_text(
        staff.read_text().replace(
            "    level: mfa\n    max_session_age: 12h\n    idle_timeout: 30m",
            "    level: password\n    max_session_age: 12h\n    idle_timeout: 30m",
        )
    )
    results = run_cases(load_policy_set(directory), directory / "tests")
    assert "password-only session steps up to mfa" in [r.case.name for r in results if not r.passed]
