"""The admin console's policy page shows a pending (unapproved) change (issue 19 item 4):
its diff against the set in force per file, and its preview and readiness summaries; the
approval record stores the preview's summary, and an approvals file written before that
still loads."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from authgate.cli import main
from authgate.config import Settings
from authgate.core.values import Level
from authgate.policy.files import approval, load_policy_set
from authgate.policy.files.approval import read_approvals
from tests.conftest import (
    TEST_POLICIES,
    make_settings,
    session_cookie,
    verify_headers,
    write_cli_config,
)
from tests.policy.test_readiness import PENDING, _credential

AT = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)


@pytest.fixture
def settings(tmp_path: Path, users_file: Path) -> Settings:
    """The test policies, approved, served with ``require_approval``."""
    policies = tmp_path / "policies"
    shutil.copytree(TEST_POLICIES, policies)
    approval.approve(policies, reviewer="rita", note="baseline", now=AT - timedelta(days=30))
    return make_settings(tmp_path, users_file,
                         policy={"path": str(policies), "require_approval": True})


@pytest.fixture
def pending(client, services, clock, tmp_path) -> Path:  # type: ignore[no-untyped-def]
    """A history through ``/verify`` (alice holds a key, bob an app), then the change
    written to the served directory: not approved, so not in force."""
    services.mfa.credentials.add(_credential("alice", "webauthn"))
    services.mfa.credentials.add(_credential("bob", "totp"))
    for user, path in (("alice", "/app/a"), ("bob", "/app/b"), ("bob", "/app/c"),
                       ("audrey", "/reports/q")):
        clock.set(AT)
        client.delete_cookie("__Host-authgate_session", domain="localhost")
        session_cookie(client, services, user, Level.PASSWORD)
        clock.advance(seconds=30)
        client.get("/verify", headers=verify_headers(path))
    directory = tmp_path / "policies"
    (directory / "85-pending.yaml").write_text(PENDING, encoding="utf-8")
    text = (directory / "90-localhost-demo.yaml").read_text(encoding="utf-8")
    (directory / "90-localhost-demo.yaml").write_text(
        text.replace("Public pages of the demo app", "Public pages of the sample app"))
    services.policies.reload()  # rejected: not approved; the set in force stays
    return directory


def test_the_policy_page_shows_the_pending_diff_preview_and_readiness(
        client, services, pending) -> None:  # type: ignore[no-untyped-def]
    in_force = services.policies.current.digest
    session_cookie(client, services, "adam", Level.PHISHING_RESISTANT)
    page = client.get("/admin/policy").get_data(as_text=True)
    assert services.policies.current.digest == in_force  # showing it enforces nothing
    pending_digest = load_policy_set(pending).digest
    assert "Pending change (not approved)" in page and pending_digest[:16] in page
    assert "85-pending.yaml</span>: added (+11 −0 lines)" in page
    assert "<ins>+  - id: app-needs-key</ins>" in page
    assert "90-localhost-demo.yaml</span>: changed (+1 −1 lines)" in page
    assert "<del>-    description: Public pages of the demo app" in page
    assert "<ins>+    description: Public pages of the sample app" in page
    assert "4 decisions replayed" in page and "<strong>3</strong> would change" in page
    assert "2 people would need to log in or step up" in page
    readiness = page[page.index("Readiness: who needs a device first"):]
    assert '<a href="/admin/users/bob">bob</a>' in readiness  # TOTP only
    assert '<a href="/admin/users/audrey">audrey</a>' in readiness  # nothing at all
    assert "alice" not in readiness  # holds a key


def test_no_pending_section_when_the_files_are_the_set_in_force(client, services) -> None:  # type: ignore[no-untyped-def]
    session_cookie(client, services, "adam", Level.PHISHING_RESISTANT)
    assert "Pending change" not in client.get("/admin/policy").get_data(as_text=True)


def test_approve_stores_the_preview_summary_and_old_approvals_still_load(
        settings, pending, tmp_path) -> None:  # type: ignore[no-untyped-def]
    config = write_cli_config(tmp_path / "authgate.yaml", settings,
                              policies=pending)
    runner = CliRunner(env={"AUTHGATE_CONFIG": None})
    result = runner.invoke(main, ["--config", str(config), "policy", "approve", "--reviewer",
                                  "rita", "--since", "100000d"])
    assert result.exit_code == 0, result.output
    assert "preview stored: 4 decisions replayed, 3 would change" in result.output
    old, new = read_approvals(pending)
    assert old.summary is None  # written before summaries: loads as it was
    assert new.digest == load_policy_set(pending).digest and new.summary is not None
    assert (new.summary["replayed"], new.summary["changed"]) == (4, 3)
    ready = {r["rule"]: r for r in new.summary["readiness"]}
    assert ready["app-needs-key"]["first_not_ready"] == ["bob"]
    assert ready["reports-mfa-trial"]["first_not_ready"] == ["audrey"]


def test_approve_before_the_database_exists_approves_without_a_preview(
        settings, pending, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The deployment guide approves the policy set before `authgate db upgrade` (found when
    the guide and the stored preview met in one suite): the approval is recorded, without a
    summary, and the note says how to store one; never a traceback."""
    config = write_cli_config(tmp_path / "fresh.yaml", settings, policies=pending,
                              storage_url=f"sqlite:///{tmp_path / 'not-yet.db'}")
    result = CliRunner(env={"AUTHGATE_CONFIG": None}).invoke(
        main, ["--config", str(config), "policy", "approve", "--reviewer", "rita"])
    assert result.exit_code == 0, result.output
    assert "no preview stored with the approval" in result.output
    assert "Traceback" not in result.output
    new = read_approvals(pending)[-1]
    assert new.digest == load_policy_set(pending).digest and new.summary is None
