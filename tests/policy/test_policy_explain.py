"""explain(): the decision (always decide()'s) and why each earlier rule did not match."""

from __future__ import annotations

from datetime import timedelta

import pytest

from authgate.policy import decide, explain
from authgate.policy.files import load_policy_set
from tests.policy.helpers import BASELINE, NOW, resource, subject


@pytest.fixture(scope="module")
def baseline():
    return load_policy_set(BASELINE)


def test_explain_lists_failed_criteria_then_the_match(baseline) -> None:
    who = subject(user="alice", groups=("IT-Dept", "City-Staff"), level="mfa", ip="10.1.2.3")
    result = explain(baseline, who, resource("https://permits.city.test/admin/x", "POST"), NOW)
    assert result.decision.rule_id == "app-admin-interfaces" and result.decision.reason == "step_up"
    trace = {t.rule_id: t for t in result.trace}
    assert list(trace)[-1] == "app-admin-interfaces" and trace["app-admin-interfaces"].matched
    assert not trace["health-checks"].matched
    assert any(f.startswith("methods: POST not in") for f in trace["health-checks"].failed)
    assert any(f.startswith("paths: /admin/x matches none") for f in trace["health-checks"].failed)
    assert trace["authgate-admin-console"].failed[0].startswith("domains: permits.city.test not in")
    assert any("subjects: alice" in f for f in trace["authgate-admin-console"].failed)
    lines = "\n".join(result.lines())
    assert "MATCH app-admin-interfaces" in lines and "decision: authenticate (step_up)" in lines
    assert "required level phishing_resistant" in lines


def test_explain_hours_and_network_reasons(baseline) -> None:
    at = NOW + timedelta(days=5)  # Saturday
    who = subject(
        user="fay",
        groups=("City-Staff", "Finance-Approvers"),
        level="phishing_resistant",
        ip="172.20.1.1",
        now=at,
    )
    result = explain(
        baseline, who, resource("https://finance.city.test/payments/approve/1", "POST"), at
    )
    failed = {t.rule_id: t.failed for t in result.trace}["finance-payment-approval"]
    assert any(f.startswith("networks: 172.20.1.1 not in ['city-lan']") for f in failed)
    assert any(f.startswith("hours: Sat 10:00 America/Toronto outside") for f in failed)
    assert result.decision.rule_id == "finance-payment-approval-deny"


def test_explain_default_deny_traces_every_rule(baseline) -> None:
    result = explain(baseline, subject(), resource("https://nowhere.example/"), NOW)
    assert result.decision.reason == "default_deny" and len(result.trace) == len(baseline.rules)
    assert all(not t.matched for t in result.trace)
    data = result.to_dict()
    assert (
        data["verdict"] == "deny"
        and data["rule"] is None
        and data["policy_digest"] == baseline.digest
    )
    assert len(data["rules"]) == len(baseline.rules)


def test_explain_anonymous_at_subject_rule(baseline) -> None:
    result = explain(baseline, subject(user=None), resource("https://auth.city.test/admin/"), NOW)
    assert result.trace[-1].rule_id == "authgate-admin-console" and result.trace[-1].matched
    assert result.decision.reason == "login_required"
    assert result.to_dict()["required"] == "phishing_resistant"


@pytest.mark.parametrize(
    "url",
    [
        "https://permits.city.test/",
        "https://hr.city.test/x",
        "http://localhost/public/a",
        "https://auth.city.test/audit",
        "https://city.test/",
        "https://a.b.city.test/admin",
    ],
)
@pytest.mark.parametrize("user", [None, "alice"])
def test_explain_agrees_with_decide(baseline, url: str, user: str | None) -> None:
    who = subject(user=user, ip="198.51.100.2")
    result = explain(baseline, who, resource(url), NOW)
    assert result.decision == decide(baseline, subject=who, resource=resource(url), now=NOW)
    matched = [t for t in result.trace if t.matched]
    assert [t.rule_id for t in matched] == (
        [result.decision.rule_id] if result.decision.rule_id else []
    )
