"""Only an approved policy set runs: start refused, reload keeps the approved set, audited."""
from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from authgate.composition.root import build_services
from authgate.core.errors import PolicyError
from authgate.policy.files import approve
from authgate.storage.engine import migrate
from authgate.storage.tables import audit_events
from tests.conftest import TEST_POLICIES, make_settings, verify_headers


@pytest.fixture
def policy_dir(tmp_path: Path) -> Path:
    target = tmp_path / "policies"
    shutil.copytree(TEST_POLICIES, target,
                    ignore=shutil.ignore_patterns("approvals.yaml"))
    return target


def approved_settings(tmp_path, users_file, policy_dir):  # type: ignore[no-untyped-def]
    settings = make_settings(tmp_path, users_file,
                             policy={"path": str(policy_dir), "require_approval": True})
    migrate(settings.storage.url)
    return settings


def test_unapproved_set_refuses_to_start(tmp_path, users_file, policy_dir) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(PolicyError, match="not approved"):
        build_services(approved_settings(tmp_path, users_file, policy_dir))


def test_reload_keeps_the_approved_set_and_audits_the_rejection(
        tmp_path, users_file, policy_dir, clock) -> None:  # type: ignore[no-untyped-def]
    from authgate.web import create_app

    approve(policy_dir, reviewer="ciso", note="baseline", now=datetime.now(UTC))
    services = build_services(approved_settings(tmp_path, users_file, policy_dir), clock=clock)
    client = create_app({"services": services, "TESTING": True}).test_client()
    approved = services.policies.current.digest
    assert client.get("/verify", headers=verify_headers("/public/x")).status_code == 200
    demo = policy_dir / "90-localhost-demo.yaml"
    demo.write_text(demo.read_text().replace("level: bypass", "level: deny"))  # unreviewed
    result = services.policies.reload()
    assert result.problems and services.policies.current.digest == approved
    assert client.get("/verify", headers=verify_headers("/public/x")).status_code == 200
    with services.engine.connect() as conn:
        row = conn.execute(select(audit_events).where(
            audit_events.c.event == "policy.reload")).mappings().one()
    assert row["outcome"] == "deny" and row["policy_digest"] == approved
    approve(policy_dir, reviewer="ciso", note="close the public path",
            now=datetime.now(UTC))
    result = services.policies.reload()
    assert result.changed and not result.problems
    assert client.get("/verify", headers=verify_headers("/public/x")).status_code == 403
