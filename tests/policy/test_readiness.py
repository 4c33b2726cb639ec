"""Readiness (issue 19 item 2), end to end: a history built through the real ``/verify``,
users with and without security keys, a pending set that raises one app to
``phishing_resistant`` (and a report-only trial that raises another to ``mfa``): readiness
names exactly the people who used the raised apps and hold no credential that reaches the
new level, and nobody who used only unchanged rules."""

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
from authgate.core.values import Level
from authgate.policy.files import load_policy_set
from authgate.policy.preview_report import PreviewReport
from authgate.policy.readiness import KEY, KEY_MFA_ONLY, TOTP, credential_kind, satisfied
from authgate.storage.rows import CredentialRow
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
  - id: reports-mfa-trial
    mode: report_only
    domains: [localhost]
    paths: ['^/reports(/|$)']
    level: mfa
  - id: app-needs-key
    domains: [localhost]
    paths: ['^/app(/|$)']
    level: phishing_resistant
"""
AT = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)
#: (user, session level, path): alice holds a key with user verification, bob an
#: authenticator app, adam a key registered without user verification, audrey nothing
HISTORY = [
    ("alice", Level.PASSWORD, "/app/a"),
    ("bob", Level.MFA, "/app/b"),
    ("adam", Level.PASSWORD, "/app/a"),
    ("audrey", Level.PHISHING_RESISTANT, "/app/a"),  # held a key then; none now
    ("bob", Level.MFA, "/mfa/x"),  # unchanged mfa rule: not a raise
    ("audrey", Level.MFA, "/mfa/x"),
    ("audrey", Level.PASSWORD, "/public/x"),
    (None, Level.NONE, "/app/a"),  # anonymous: nobody to name
    ("alice", Level.PASSWORD, "/reports/q"),
    ("adam", Level.PASSWORD, "/reports/q"),
    ("audrey", Level.PASSWORD, "/reports/q"),
]


@pytest.fixture
def settings(tmp_path: Path, users_file: Path) -> Settings:
    current, pending = tmp_path / "policies", tmp_path / "pending"
    shutil.copytree(TEST_POLICIES, current)
    shutil.copytree(TEST_POLICIES, pending)
    (pending / "85-pending.yaml").write_text(PENDING, encoding="utf-8")
    return make_settings(tmp_path, users_file, policy={"path": str(current)})


def _credential(user: str, kind: str, *, uv: bool = True) -> CredentialRow:
    return CredentialRow(id=f"{user}-{kind}", username=user, kind=kind, name=kind, active=True,
                         created_at=AT, last_used_at=None,
                         credential_id=f"cred-{user}" if kind == "webauthn" else None,
                         public_key="pk" if kind == "webauthn" else None,
                         secret="sealed" if kind == "totp" else None, user_verified=uv)


@pytest.fixture
def history(client, services, clock) -> None:  # type: ignore[no-untyped-def]
    store = services.mfa.credentials
    store.add(_credential("alice", "webauthn"))
    store.add(_credential("bob", "totp"))
    store.add(_credential("adam", "webauthn", uv=False))
    for user, level, path in HISTORY:
        clock.set(AT)
        client.delete_cookie("__Host-authgate_session", domain="localhost")
        if user is not None:
            session_cookie(client, services, user, level)
        clock.advance(seconds=30)
        assert client.get("/verify", headers=verify_headers(
            path, **{"X-Forwarded-For": "10.1.1.1"})).status_code in (200, 401)


def report_for(settings: Settings, tmp_path: Path, *, jobs: int = 1) -> PreviewReport:
    return _preview(settings, load_policy_set(tmp_path / "pending"),
                    since=AT - timedelta(days=1), samples=3, jobs=jobs)


def test_readiness_names_exactly_the_users_without_a_credential_for_the_raised_level(
        settings, history, tmp_path) -> None:  # type: ignore[no-untyped-def]
    report = report_for(settings, tmp_path)
    assert report.readiness is not None
    by_rule = {r.rule_id: r for r in report.readiness}
    assert set(by_rule) == {"app-needs-key", "reports-mfa-trial"}
    key = by_rule["app-needs-key"]
    assert (key.level, key.report_only, key.people, key.ready) == (
        Level.PHISHING_RESISTANT, False, 4, 1)
    assert {user: kinds for user, _n, _at, kinds in key.missing} == {
        "adam": (KEY_MFA_ONLY,), "audrey": (), "bob": (TOTP,)}
    assert key.hosts == (("localhost", 4),)
    trial = by_rule["reports-mfa-trial"]
    assert (trial.level, trial.report_only, trial.people, trial.ready) == (Level.MFA, True, 3, 2)
    assert [user for user, *_ in trial.missing] == ["audrey"]


def test_readiness_in_the_command_table_and_json(settings, history, tmp_path) -> None:  # type: ignore[no-untyped-def]
    config = write_cli_config(tmp_path / "authgate.yaml", settings,
                              policies=tmp_path / "policies", require_approval=False)
    args = ["--config", str(config), "policy", "preview", "--policies",
            str(tmp_path / "pending"), "--since", "100000d"]
    runner = CliRunner(env={"AUTHGATE_CONFIG": None})
    as_json = runner.invoke(main, [*args, "--json"])
    assert as_json.exit_code == 0, as_json.output
    ready = {r["rule"]: r for r in json.loads(as_json.output)["readiness"]}
    assert [u["user"] for u in ready["app-needs-key"]["not_ready"]] == ["adam", "audrey", "bob"]
    assert ready["app-needs-key"]["needs"].startswith("a security key or passkey")
    table = runner.invoke(main, args)
    assert table.exit_code == 0, table.output
    assert ("readiness app-needs-key needs phishing_resistant on localhost: 4 people used it, "
            "1 ready, 3 without a security key or passkey") in table.output
    assert "not ready: audrey (1 requests" in table.output and "holds no device" in table.output


@pytest.mark.parametrize(("kind", "uv", "attested", "expected"), [
    ("totp", False, False, TOTP), ("webauthn", True, True, KEY),
    ("webauthn", False, True, KEY_MFA_ONLY), ("webauthn", True, False, KEY_MFA_ONLY),
    ("recovery", True, True, None)])
def test_which_credential_reaches_which_level(kind, uv, attested, expected) -> None:  # type: ignore[no-untyped-def]
    found = credential_kind(kind=kind, user_verified=uv, meets_attestation=attested)
    assert found == expected
    kinds = frozenset({found} if found else ())
    assert satisfied(kinds, Level.PASSWORD)
    assert satisfied(kinds, Level.MFA) is (found is not None)
    assert satisfied(kinds, Level.PHISHING_RESISTANT) is (found == KEY)
