"""Report-only rules (issue 19 item 3): evaluated, recorded on the Decision, never deciding."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta

import pytest
from click.testing import CliRunner

from authgate.cli.policy import policy_group
from authgate.policy import PolicyError, PolicySet, Verdict, decide, explain
from authgate.policy.files import load_policy_set
from tests.policy.helpers import BASELINE, GLOBALS, NOW, resource, subject, write

RULES = """\
- id: health
  paths: ['^/healthz$']
  level: bypass
- id: payroll-key-trial
  mode: report_only
  domains: [payroll.city.test]
  level: phishing_resistant
- id: payroll-lan-trial
  mode: report_only
  domains: [payroll.city.test]
  networks: [city-lan]
  level: deny
- id: hr-trial
  mode: report_only
  domains: [hr.city.test]
  subjects: ["group:HR"]
  level: mfa
- id: staff
  domains: ["*.city.test"]
  subjects: ["group:City-Staff"]
  level: mfa
- id: enforced-after
  mode: enforce
  domains: [other.test]
  level: password
"""


@pytest.fixture
def ps(make_policies: Callable[..., PolicySet]) -> PolicySet:
    return make_policies(RULES)


def test_report_only_rules_record_would_verdicts_and_the_next_rule_decides(ps) -> None:
    who = subject(user="alice", groups=("City-Staff",), level="mfa", ip="10.1.2.3")
    decision = decide(ps, subject=who, resource=resource("https://payroll.city.test/"), now=NOW)
    assert (decision.verdict, decision.rule_id, decision.reason) == (
        Verdict.ALLOW, "staff", "allowed")
    assert decision.report_only == (("payroll-key-trial", "would_step_up"),
                                    ("payroll-lan-trial", "would_deny"))


def test_report_only_would_allow_and_default_deny_keep_the_report(ps) -> None:
    outsider = subject(user="bob", groups=("HR",), level="mfa", ip="192.0.2.9")
    decision = decide(ps, subject=outsider, resource=resource("https://hr.city.test/"), now=NOW)
    assert (decision.verdict, decision.rule_id, decision.reason) == (
        Verdict.DENY, None, "default_deny")
    assert decision.report_only == (("hr-trial", "would_allow"),)


def test_report_only_rule_that_does_not_match_records_nothing(ps) -> None:
    who = subject(user="alice", groups=("City-Staff",), level="mfa", ip="192.0.2.9")
    decision = decide(ps, subject=who, resource=resource("https://hr.city.test/"), now=NOW)
    assert decision.rule_id == "staff" and decision.report_only == ()
    health = decide(ps, subject=who, resource=resource("https://payroll.city.test/healthz"),
                    now=NOW)
    assert health.rule_id == "health" and health.report_only == ()  # decided before


def test_anonymous_request_on_a_report_only_subjects_rule_would_step_up(ps) -> None:
    decision = decide(ps, subject=subject(user=None), resource=resource("https://hr.city.test/"),
                      now=NOW)
    assert decision.rule_id == "staff" and decision.verdict is Verdict.AUTHENTICATE
    assert decision.report_only == (("hr-trial", "would_step_up"),)


def test_mode_is_validated_fail_closed(make_policies: Callable[..., PolicySet]) -> None:
    with pytest.raises(PolicyError) as caught:
        make_policies("""\
            - id: typo
              mode: reportonly
              level: mfa
            - id: not-a-string
              mode: true
              level: mfa
            """)
    problems = "\n".join(caught.value.problems)
    assert "typo: mode 'reportonly' is not one of enforce, report_only" in problems
    assert "not-a-string: mode: expected a string, got bool 'true'" in problems


def test_a_report_only_rule_shadows_nothing_but_may_be_shadowed(
        make_policies: Callable[..., PolicySet]) -> None:
    ps = make_policies("""\
        - id: trial-everything
          mode: report_only
          level: deny
        - id: all
          level: password
        """)
    assert [r.report_only for r in ps.rules] == [True, False]
    with pytest.raises(PolicyError, match="trial: shadowed by earlier rule all"):
        make_policies("""\
            - id: all
              level: password
            - id: trial
              mode: report_only
              domains: [x.test]
              level: deny
            """)


def test_explain_shows_the_deciding_rule_and_the_report_only_ones(ps) -> None:
    who = subject(user="alice", groups=("City-Staff",), level="mfa", ip="10.1.2.3")
    result = explain(ps, who, resource("https://payroll.city.test/"), NOW)
    lines = "\n".join(result.lines())
    assert "REPORT payroll-key-trial" in lines and "report-only: would_step_up" in lines
    assert "REPORT payroll-lan-trial" in lines and "MATCH staff" in lines
    assert "report-only: rule payroll-lan-trial would_deny" in lines
    assert "skip  hr-trial" in lines or "skip hr-trial" in lines
    data = result.to_dict()
    assert data["rule"] == "staff" and data["report_only"] == [
        {"rule": "payroll-key-trial", "would": "would_step_up"},
        {"rule": "payroll-lan-trial", "would": "would_deny"}]
    trace = {r["id"]: r for r in data["rules"]}
    assert trace["payroll-lan-trial"]["report_only"] == "would_deny"
    assert trace["staff"]["report_only"] is None


def test_policy_explain_cli_shows_report_only_rules(tmp_path) -> None:
    directory = write(tmp_path / "p", {
        "00-globals.yaml": GLOBALS,
        "10-rules.yaml": "version: 1\nrules:\n" + "".join(
            f"  {line}\n" for line in RULES.splitlines())})
    load_policy_set(directory)
    args = ["explain", "--policies", str(directory), "--user", "alice", "--groups",
            "City-Staff", "--level", "mfa", "--ip", "10.1.2.3", "--url",
            "https://payroll.city.test/", "--at", NOW.isoformat()]
    text = CliRunner().invoke(policy_group, args)
    assert text.exit_code == 0, text.output
    assert "REPORT payroll-lan-trial" in text.output and "MATCH staff" in text.output
    as_json = CliRunner().invoke(policy_group, [*args, "--json"])
    assert json.loads(as_json.output)["report_only"][1] == {"rule": "payroll-lan-trial",
                                                            "would": "would_deny"}


def test_report_only_rules_need_no_policy_test_case(tmp_path) -> None:
    from authgate.policy.files.cases import uncovered_rules

    directory = write(tmp_path / "p", {
        "00-globals.yaml": GLOBALS,
        "10-rules.yaml": "version: 1\nrules:\n" + "".join(
            f"  {line}\n" for line in RULES.splitlines())})
    assert "payroll-key-trial" not in uncovered_rules(load_policy_set(directory), [])
    assert "staff" in uncovered_rules(load_policy_set(directory), [])


def test_baseline_has_no_report_only_rule_and_decides_as_before() -> None:
    baseline = load_policy_set(BASELINE)
    assert not any(rule.report_only for rule in baseline.rules)
    who = subject(user="alice", groups=("City-Staff",), level="mfa",
                  auth_age=timedelta(minutes=5))
    decision = decide(baseline, subject=who, resource=resource("https://permits.city.test/"),
                      now=NOW)
    assert decision.report_only == ()
