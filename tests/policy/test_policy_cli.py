"""`authgate policy check | approve | explain | test` (click group, no Flask)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from authgate.cli.policy import policy_group
from tests.policy.helpers import BASELINE


@pytest.fixture
def policies(tmp_path: Path) -> Path:
    directory = tmp_path / "policies"
    shutil.copytree(BASELINE, directory, ignore=shutil.ignore_patterns("approvals.yaml"))
    return directory


def run(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(policy_group, list(args), env=env, catch_exceptions=False)


def test_check_reports_digest_and_approval(policies: Path) -> None:
    result = run("check", "--policies", str(policies))
    assert result.exit_code == 0, result.output
    from authgate.policy.files import load_policy_set

    rules = len(load_policy_set(policies).rules)
    assert f"ok: {rules} rules in 6 files, digest " in result.output
    assert "NOT approved" in result.output


def test_check_lists_every_error_and_exits_1(policies: Path) -> None:
    (policies / "50-bad.yaml").write_text(
        "version: 1\nrules:\n  - {id: a, level: x}\n  - {id: b, level: mfa, paths: ['(']}\n"
    )
    result = run("check", "--policies", str(policies))
    assert result.exit_code == 1
    assert (
        "50-bad.yaml:3 a: level 'x'" in result.output
        and "50-bad.yaml:4 b: paths: bad regular" in result.output
    )


def test_a_shadowed_rule_fails_the_check(policies: Path) -> None:
    """A rule that can never match is an error, not a warning (pen test of #14: a later,
    stricter rule behind a catch-all silently lowered the level)."""
    (policies / "50-shadow.yaml").write_text(
        "version: 1\nrules:\n  - {id: late, domains: [x.city.test],"
        ' subjects: ["group:City-Staff"], level: mfa}\n'
    )
    result = run("check", "--policies", str(policies))
    assert result.exit_code == 1 and "shadowed by earlier rule" in result.output


def test_check_strict_fails_on_warnings(policies: Path) -> None:
    (policies / "50-long.yaml").write_text(
        "version: 1\nrules:\n  - {id: long, domains: [long.city.test], level: mfa,"
        " max_session_age: 13h}\n"
    )
    assert run("check", "--policies", str(policies)).exit_code == 0
    result = run("check", "--strict", "--policies", str(policies))
    assert result.exit_code == 1 and "exceeds the NIST SP 800-63B cap" in result.output


def test_policies_dir_from_environment(policies: Path) -> None:
    result = run("check", env={"AUTHGATE_POLICIES": str(policies)})
    assert result.exit_code == 0, result.output


def test_test_command_passes_then_fails(policies: Path) -> None:
    result = run("test", "--policies", str(policies))
    assert result.exit_code == 0, result.output
    assert "PASS " in result.output and " 0 failed" in result.output
    (policies / "tests" / "zz.yaml").write_text(
        'cases:\n  - name: wrong\n    request: {url: "https://permits.city.test/"}\n'
        "    expect: {verdict: allow, rule: staff-apps}\n"
    )
    result = run("test", "--policies", str(policies))
    assert result.exit_code == 1 and "FAIL " in result.output and "1 failed" in result.output


def test_approve_then_check(policies: Path) -> None:
    result = run(
        "approve", "--policies", str(policies), "--reviewer", "Jane Roe", "--note", "CAB-42"
    )
    assert result.exit_code == 0, result.output
    assert "approved " in result.output
    result = run("check", "--policies", str(policies))
    assert "approved by Jane Roe" in result.output


def test_approve_refused_when_tests_fail(policies: Path) -> None:
    (policies / "tests" / "zz.yaml").write_text(
        'cases:\n  - name: wrong\n    request: {url: "https://permits.city.test/"}\n'
        "    expect: {verdict: allow, rule: staff-apps}\n"
    )
    result = run("approve", "--policies", str(policies), "--reviewer", "x")
    assert result.exit_code == 1 and "refused" in result.output
    assert not (policies / "approvals.yaml").exists()


def test_explain_text_and_json(policies: Path) -> None:
    args = [
        "explain",
        "--policies",
        str(policies),
        "--user",
        "alice",
        "--groups",
        "IT-Dept,City-Staff",
        "--level",
        "mfa",
        "--ip",
        "10.1.2.3",
        "--url",
        "https://permits.city.test/admin/x",
        "--method",
        "POST",
        "--at",
        "2026-01-05T15:00:00Z",
        "--auth-age",
        "10m",
    ]
    result = run(*args)
    assert result.exit_code == 0, result.output
    assert (
        "MATCH app-admin-interfaces" in result.output
        and "decision: authenticate (step_up)" in result.output
    )
    data = json.loads(run(*args, "--json").output)
    assert (data["verdict"], data["rule"], data["reason"], data["required"]) == (
        "authenticate",
        "app-admin-interfaces",
        "step_up",
        "phishing_resistant",
    )


def test_explain_anonymous_and_bad_input(policies: Path) -> None:
    result = run(
        "explain", "--policies", str(policies), "--url", "http://localhost/public/x", "--json"
    )
    assert json.loads(result.output)["reason"] == "bypass"
    assert run("explain", "--policies", str(policies), "--url", "not-a-url").exit_code == 2
    assert (
        run(
            "explain", "--policies", str(policies), "--url", "https://a.city.test/", "--ip", "x"
        ).exit_code
        == 2
    )
    assert (
        run(
            "explain",
            "--policies",
            str(policies),
            "--url",
            "https://a.city.test/",
            "--auth-age",
            "soon",
        ).exit_code
        == 2
    )
