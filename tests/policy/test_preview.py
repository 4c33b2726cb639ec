"""Policy change preview (issue 19 item 1), end to end: a history built through the real
``/verify`` (several users, groups, levels, networks, hours), a pending change, and a preview
that names exactly the requests and users whose verdict would change, and nobody else."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from authgate.cli import main
from authgate.cli.policy import _preview
from authgate.config import Settings
from authgate.core.values import AuditEvent, Level, Outcome
from authgate.policy.files import load_policy_set
from authgate.policy.preview import PreviewReport
from authgate.storage.audit_rows import AuditFilter
from tests.conftest import (
    TEST_POLICIES,
    make_settings,
    session_cookie,
    verify_headers,
    write_cli_config,
)

PENDING = """\
version: 1
rules:
  - id: trial-strong-mfa
    mode: report_only
    domains: [localhost]
    paths: ['^/mfa(/|$)']
    level: phishing_resistant
  - id: app-strong-for-it
    domains: [localhost]
    paths: ['^/app(/|$)']
    subjects: ["group:IT-Dept"]
    level: phishing_resistant
  - id: reports-lan-office-hours
    domains: [localhost]
    paths: ['^/reports(/|$)']
    networks: [city-lan]
    hours: [{days: [mon, tue, wed, thu, fri], from: "08:00", to: "18:00"}]
    level: password
  - id: reports-otherwise
    domains: [localhost]
    paths: ['^/reports(/|$)']
    level: deny
  - id: shared-for-bob
    domains: [localhost]
    paths: ['^/forbidden/shared$']
    subjects: ["user:bob"]
    level: password
"""
OFFICE = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)  # Monday 10:00 in Toronto
EVENING = datetime(2026, 1, 5, 23, 30, tzinfo=UTC)  # Monday 18:30 in Toronto
LAN, OUTSIDE = "10.1.1.1", "203.0.113.9"

#: (name, user, level, ip, path, when, change under PENDING: (kind, rule) or None)
HISTORY = [
    ("alice-pw-app", "alice", Level.PASSWORD, LAN, "/app/a", OFFICE,
     ("needs_step_up", "app-strong-for-it")),
    ("alice-key-app", "alice", Level.PHISHING_RESISTANT, LAN, "/app/a", OFFICE, None),
    ("bob-app", "bob", Level.PASSWORD, LAN, "/app/a", OFFICE, None),
    ("bob-reports-lan", "bob", Level.PASSWORD, LAN, "/reports/q", OFFICE, None),
    ("bob-reports-outside", "bob", Level.PASSWORD, OUTSIDE, "/reports/q", OFFICE,
     ("loses_access", "reports-otherwise")),
    ("audrey-reports-evening", "audrey", Level.MFA, LAN, "/reports/q", EVENING,
     ("loses_access", "reports-otherwise")),
    ("bob-shared", "bob", Level.PASSWORD, LAN, "/forbidden/shared", OFFICE,
     ("gains_access", "shared-for-bob")),
    ("adam-shared", "adam", Level.MFA, LAN, "/forbidden/shared", OFFICE, None),
    ("anonymous-shared", None, Level.NONE, OUTSIDE, "/forbidden/shared", OFFICE,
     ("needs_step_up", "shared-for-bob")),
    ("anonymous-public", None, Level.NONE, OUTSIDE, "/public/x", OFFICE, None),
    ("anonymous-app", None, Level.NONE, OUTSIDE, "/app/a", EVENING, None),
    ("alice-mfa", "alice", Level.MFA, LAN, "/mfa/x", EVENING, None),
]


def directories(tmp_path: Path) -> tuple[Path, Path]:
    """The set in force (the test policies) and a pending copy with ``PENDING`` added."""
    current, pending = tmp_path / "policies", tmp_path / "pending"
    shutil.copytree(TEST_POLICIES, current)
    shutil.copytree(TEST_POLICIES, pending)
    (pending / "85-pending.yaml").write_text(PENDING, encoding="utf-8")
    return current, pending


@pytest.fixture
def settings(tmp_path: Path, users_file: Path) -> Settings:
    return make_settings(tmp_path, users_file, policy={"path": str(directories(tmp_path)[0])})


@pytest.fixture
def history(client, services, clock) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """Each request of ``HISTORY`` through ``/verify``; its audit record id by name."""
    ids = {}
    for name, user, level, ip, path, when, _change in HISTORY:
        clock.set(when)
        client.delete_cookie("__Host-authgate_session", domain="localhost")
        if user is not None:
            session_cookie(client, services, user, level)
        clock.advance(seconds=30)
        client.get("/verify", headers=verify_headers(path, **{"X-Forwarded-For": ip}))
        latest = services.audit.store.stream_rows(AuditFilter(event="verify"), descending=True)
        ids[name] = next(iter(latest)).id  # not max_id: a checkpoint may follow
    return ids


def preview_of(settings: Settings, pending: Path, samples: int = 100, jobs: int = 1
               ) -> PreviewReport:
    report: PreviewReport = _preview(settings, load_policy_set(pending),
                                     since=OFFICE - timedelta(days=1), samples=samples,
                                     jobs=jobs)
    return report


def test_preview_names_exactly_the_requests_and_users_whose_verdict_changes(
        settings, history, tmp_path) -> None:  # type: ignore[no-untyped-def]
    report = preview_of(settings, tmp_path / "pending")
    expected = {history[name]: change for name, *_, change in HISTORY if change is not None}
    found = {s["record_id"]: (g.kind, g.rule_id) for g in report.groups for s in g.samples}
    assert found == expected
    assert sum(g.seen.count for g in report.groups) == report.changed == len(expected)
    assert report.replayed == len(HISTORY) and report.unchanged == len(HISTORY) - len(expected)
    assert {kind: sorted(users) for kind, users in report.users.items()} == {
        "needs_step_up": ["alice"], "loses_access": ["audrey", "bob"],
        "gains_access": ["bob"]}
    assert report.report_only[("trial-strong-mfa", "would_step_up")].count == 1


def test_groups_are_by_rule_and_app_with_counts_and_first_and_last_seen(
        settings, history, tmp_path) -> None:  # type: ignore[no-untyped-def]
    report = preview_of(settings, tmp_path / "pending", samples=1)
    loses = [g for g in report.groups if g.kind == "loses_access"]
    assert len(loses) == 1 and loses[0].seen.count == 2
    assert (loses[0].host, loses[0].rule_id, loses[0].was, loses[0].now) == (
        "localhost", "reports-otherwise", "allow", "deny")
    assert loses[0].seen.first == OFFICE + timedelta(seconds=30)
    assert loses[0].seen.last == EVENING + timedelta(seconds=30)
    assert len(loses[0].samples) == 1  # bounded
    text = "\n".join(report.lines())
    assert "12 decisions replayed, 5 would change, 7 unchanged" in text
    assert "users who would lose access: audrey (1), bob (1)" in text


def test_the_set_in_force_replays_to_no_change(settings, history, tmp_path) -> None:  # type: ignore[no-untyped-def]
    report = preview_of(settings, tmp_path / "policies")
    assert report.changed == 0 and report.replayed == len(HISTORY) and report.groups == ()


def test_records_that_cannot_be_replayed_are_counted_not_guessed(
        settings, services, tmp_path) -> None:  # type: ignore[no-untyped-def]
    services.clock.set(OFFICE)
    old = AuditEvent(event="verify", outcome=Outcome.ALLOW, reason="allowed", username="bob",
                     host="localhost", path="/reports/q", method="GET", client_ip=LAN,
                     rule_id="demo-default", detail=(("level", "password"),))
    long_query = AuditEvent(event="verify", outcome=Outcome.CHALLENGE, host="localhost",
                            path="/app", method="GET", rule_id="demo-default",
                            reason="login_required", detail=(("query", "q=" + "x" * 600),))
    error = AuditEvent(event="verify", outcome=Outcome.ERROR, reason="bad_request")
    for event in (old, long_query, error):
        services.audit.record(event)
    report = preview_of(settings, tmp_path / "pending")
    assert report.replayed == 0
    assert report.skipped == {"no_groups": 1, "truncated": 1, "error": 1}


def test_policy_preview_command_json_and_table(settings, history, tmp_path) -> None:  # type: ignore[no-untyped-def]
    config = write_cli_config(tmp_path / "authgate.yaml", settings,
                              policies=tmp_path / "policies", require_approval=False)
    args = ["--config", str(config), "policy", "preview", "--policies",
            str(tmp_path / "pending"), "--since", "100000d"]
    runner = CliRunner(env={"AUTHGATE_CONFIG": None})
    as_json = runner.invoke(main, [*args, "--json"])
    assert as_json.exit_code == 0, as_json.output
    data = json.loads(as_json.output)
    assert (data["replayed"], data["changed"]) == (len(HISTORY), 5)
    assert sorted(data["users"]["loses_access"]) == ["audrey", "bob"]
    table = runner.invoke(main, args)
    assert table.exit_code == 0 and "reports-otherwise" in table.output
    assert runner.invoke(main, [*args[:-1], "soon"]).exit_code == 2
