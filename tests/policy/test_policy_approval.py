"""Approval: append-only history of approved digests; only an approved digest is enforced."""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

from authgate.policy import PolicyError
from authgate.policy.files import approve, latest_approval_for, load_policy_set, require_approved
from authgate.policy.files.approval import read_approvals
from tests.policy.helpers import BASELINE, NOW


@pytest.fixture
def policies(tmp_path: Path) -> Path:
    directory = tmp_path / "policies"
    shutil.copytree(BASELINE, directory, ignore=shutil.ignore_patterns("approvals.yaml"))
    return directory


def test_unapproved_set_is_refused(policies: Path) -> None:
    ps = load_policy_set(policies)
    with pytest.raises(PolicyError, match=f"policy set {ps.digest} is not approved"):
        require_approved(ps, policies)
    assert latest_approval_for(policies, ps.digest) is None


def test_approve_records_and_require_accepts(policies: Path) -> None:
    ps = load_policy_set(policies)
    record = approve(policies, reviewer="Jane Roe", note="CAB-42", now=NOW)
    assert (
        record.digest == ps.digest and record.reviewer == "Jane Roe" and record.approved_at == NOW
    )
    assert require_approved(ps, policies) == record
    entries = yaml.safe_load((policies / "approvals.yaml").read_text())
    assert entries == [
        {
            "digest": ps.digest,
            "reviewer": "Jane Roe",
            "approved_at": NOW.isoformat(),
            "note": "CAB-42",
        }
    ]
    assert load_policy_set(policies).digest == ps.digest, "the approvals file is outside the digest"


def test_history_and_latest(policies: Path) -> None:
    first = approve(policies, reviewer="a", note="v1", now=NOW)
    (policies / "40-staff-apps.yaml").write_text(
        (policies / "40-staff-apps.yaml").read_text() + "# changed\n"
    )
    changed = load_policy_set(policies)
    with pytest.raises(PolicyError, match="not approved"):
        require_approved(changed, policies)
    second = approve(policies, reviewer="b", note="v2", now=NOW + timedelta(hours=1))
    third = approve(policies, reviewer="c", note="again", now=NOW + timedelta(hours=2))
    assert second.digest == third.digest != first.digest
    assert latest_approval_for(policies, first.digest) == first
    assert latest_approval_for(policies, changed.digest) == third
    assert [a.reviewer for a in read_approvals(policies)] == ["a", "b", "c"]


def test_invalid_set_cannot_be_approved(policies: Path) -> None:
    (policies / "50-bad.yaml").write_text("version: 1\nrules:\n  - {id: x, level: admin}\n")
    with pytest.raises(PolicyError, match="50-bad.yaml:3 x: level 'admin'"):
        approve(policies, reviewer="a", note="", now=NOW)
    assert not (policies / "approvals.yaml").exists()


def test_expected_digest_guards_against_changes_during_review(policies: Path) -> None:
    with pytest.raises(PolicyError, match="changed during review"):
        approve(policies, reviewer="a", note="", now=NOW, expected_digest="0" * 64)


@pytest.mark.parametrize("reviewer", ["", "  ", "evil\nreviewer: x"])
def test_reviewer_must_be_one_line(policies: Path, reviewer: str) -> None:
    with pytest.raises(PolicyError):
        approve(policies, reviewer=reviewer, note="", now=NOW)


def test_naive_time_refused(policies: Path) -> None:
    with pytest.raises(ValueError):
        approve(policies, reviewer="a", note="", now=datetime(2026, 1, 1))


def test_times_stored_in_utc(policies: Path) -> None:
    local = datetime(2026, 1, 5, 10, 0, tzinfo=timezone(timedelta(hours=-5)))
    record = approve(policies, reviewer="a", note="", now=local)
    assert record.approved_at.utcoffset() == timedelta(0) and record.approved_at == local
    assert "+00:00" in (policies / "approvals.yaml").read_text()


@pytest.mark.parametrize(
    "content",
    [
        "{not: a list}",
        "- {digest: abc}",
        "- [unclosed",
        "- {digest: zz, reviewer: a, approved_at: '2026-01-01T00:00:00+00:00', note: ''}",
    ],
)
def test_corrupt_approvals_fail_closed(policies: Path, content: str) -> None:
    (policies / "approvals.yaml").write_text(content)
    ps = load_policy_set(policies)
    with pytest.raises(PolicyError):
        require_approved(ps, policies)
    with pytest.raises(PolicyError):
        approve(policies, reviewer="a", note="", now=NOW)
