"""Through the real ``/verify``: the audit record carries the report-only outcomes (issue 19
item 3) and what a faithful replay needs (item 1): groups, level, session ages, query."""

from __future__ import annotations

import json
import re
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from authgate.audit.catalog import REASONS
from authgate.config import Settings
from authgate.core.values import Level
from authgate.policy.values import WOULD
from authgate.storage.tables import audit_events
from tests.conftest import TEST_POLICIES, make_settings, session_cookie, verify_headers

TRIAL = """\
version: 1
rules:
  - id: trial-strong-app
    description: Would /app need a security key? Report only, while users enrol.
    mode: report_only
    domains: [localhost]
    paths: ['^/app(/|$)']
    level: phishing_resistant
  - id: trial-lan-only
    description: Would /app be refused off the city network? Report only.
    mode: report_only
    domains: [localhost]
    paths: ['^/app(/|$)']
    networks: [city-lan]
    level: deny
"""


def trial_policies(tmp_path: Path) -> Path:
    """The test policy set plus ``TRIAL``, placed before the demo rules (file order)."""
    directory = tmp_path / "policies"
    shutil.copytree(TEST_POLICIES, directory)
    (directory / "85-trial.yaml").write_text(TRIAL, encoding="utf-8")
    return directory


@pytest.fixture
def settings(tmp_path: Path, users_file: Path) -> Settings:
    return make_settings(tmp_path, users_file, policy={"path": str(trial_policies(tmp_path))},
                         server={"trusted_proxies": ["127.0.0.1/32"]})


def last_record(services) -> dict:  # type: ignore[no-untyped-def]
    with services.engine.connect() as conn:
        row = conn.execute(select(audit_events).order_by(audit_events.c.id.desc())
                           .limit(1)).mappings().one()
    return {**row, "detail": json.loads(row["detail"])}


def test_verify_answers_the_deciding_rule_and_records_the_report_only_ones(
        client, services, clock) -> None:  # type: ignore[no-untyped-def]
    session_cookie(client, services, "alice", Level.PASSWORD)
    clock.advance(minutes=3)
    r = client.get("/verify", headers=verify_headers("/app/page?a=1&b=2", host="localhost:8080",
                                                     **{"X-Forwarded-For": "10.9.8.7"}),
                   environ_base={"REMOTE_ADDR": "127.0.0.1"})
    assert r.status_code == 200 and r.headers["Remote-User"] == "alice"  # demo-default decides
    row = last_record(services)
    assert (row["outcome"], row["rule_id"], row["reason"]) == ("allow", "demo-default", "allowed")
    assert row["detail"]["report_only"] == ("trial-strong-app:would_step_up,"
                                            "trial-lan-only:would_deny")
    assert row["client_ip"] == "10.9.8.7"
    assert json.loads(row["detail"]["groups"]) == ["City-Staff", "IT-Dept"]
    assert row["detail"]["level"] == "password" and row["detail"]["auth_age"] == "180"
    assert row["detail"]["idle"] == "180" and row["detail"]["query"] == "a=1&b=2"
    assert row["detail"]["required"] == "password"  # readiness: what the rule asked then
    assert "as_anonymous" not in row["detail"]


def test_anonymous_request_records_report_only_but_no_subject(client, services) -> None:  # type: ignore[no-untyped-def]
    r = client.get("/verify", headers=verify_headers("/app/x"))
    assert r.status_code == 401
    row = last_record(services)
    assert (row["outcome"], row["rule_id"], row["username"]) == ("challenge", "demo-default", "")
    assert row["detail"] == {"report_only": "trial-strong-app:would_step_up"}


def test_a_request_no_report_only_rule_matches_has_no_report(client, services) -> None:  # type: ignore[no-untyped-def]
    session_cookie(client, services, "bob", Level.MFA)
    assert client.get("/verify", headers=verify_headers("/other")).status_code == 200
    detail = last_record(services)["detail"]
    assert "report_only" not in detail and detail["level"] == "mfa"


def test_would_verdicts_are_catalogued_reason_codes() -> None:
    assert set(WOULD.values()) <= set(REASONS)


def test_the_auditor_summary_shows_what_report_only_rules_would_have_done(
        client, services, app) -> None:  # type: ignore[no-untyped-def]
    """Item 3's last sentence: report-only outcomes in the auditor console's summary, per
    rule and would-be outcome, with how many requests and people."""
    headers = verify_headers("/app/page", host="localhost:8080",
                             **{"X-Forwarded-For": "10.9.8.7"})
    for user, times in (("alice", 2), ("bob", 1)):
        session_cookie(client, services, user, Level.PASSWORD)
        for _ in range(times):
            assert client.get("/verify", headers=headers,
                              environ_base={"REMOTE_ADDR": "127.0.0.1"}).status_code == 200
    assert client.get("/verify", headers=verify_headers("/elsewhere")).status_code in (200, 401)
    session_cookie(client, services, "audrey", Level.MFA)
    page = client.get("/audit/summary").get_data(as_text=True)
    table = page[page.index('id="summary-report-only"'):]
    table = table[:table.index("</table>")]
    rows = [[cell.strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
            for row in re.findall(r"<tr>(.*?)</tr>", table, re.S) if "<td" in row]
    assert [r[:4] for r in rows] == [["trial-lan-only", "deny", "3", "2"],
                                     ["trial-strong-app", "step up", "3", "2"]]
    listed, partial = services.audit_store.report_only_counts(
        since=services.clock.now() - timedelta(days=1), until=services.clock.now()
        + timedelta(seconds=1))
    assert not partial and {(c.rule_id, c.would, c.requests) for c in listed} == {
        ("trial-lan-only", "would_deny", 3), ("trial-strong-app", "would_step_up", 3)}
