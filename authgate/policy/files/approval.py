"""Review approval: who approved which policy digest, when, and why.

``policies/approvals.yaml`` is an append-only history (excluded from the digest, so recording
an approval does not change what was approved). authgate enforces only a set whose digest
appears here (``require_approved``). The file is a review record, not a signature: anyone who
can write ``policies/`` can write it too, so protect the directory (code review, file
permissions, signed commits).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from authgate.core.errors import PolicyError
from authgate.policy.files.loader import APPROVALS_FILE, load_policy_set
from authgate.policy.values import PolicySet

_HEADER = (
    "# Written by `authgate policy approve`: one entry per approval, newest last.\n"
    "# Not part of the policy digest. Do not edit by hand.\n"
)
_DIGEST = re.compile(r"^[0-9a-f]{64}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class Approval:
    digest: str
    reviewer: str
    approved_at: datetime
    note: str
    #: the preview's bounded summary the reviewer saw (issue 19 item 4); None in approvals
    #: recorded before it, or made without an audit trail to replay
    summary: dict[str, Any] | None = None


def approvals_path(policies_dir: Path) -> Path:
    return Path(policies_dir) / APPROVALS_FILE


def read_approvals(policies_dir: Path) -> list[Approval]:
    """Every recorded approval, oldest first; a malformed file is a PolicyError (fail closed)."""
    path = approvals_path(policies_dir)
    if not path.exists():
        return []
    try:
        entries = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise PolicyError([f"{path}:0 -: unreadable approvals file: {exc}"]) from exc
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise PolicyError([f"{path}:1 -: approvals file must be a list"])
    return [_approval(path, index, entry) for index, entry in enumerate(entries)]


def _approval(path: Path, index: int, entry: object) -> Approval:
    keys = {"digest", "reviewer", "approved_at", "note"}
    if not isinstance(entry, dict) or not keys <= set(entry) <= keys | {"summary"} or (
            entry.get("summary") is not None and not isinstance(entry["summary"], dict)):
        raise PolicyError([f"{path}:0 approvals[{index}]: expected keys {sorted(keys)} "
                           "and an optional summary mapping"])
    approved_at = entry["approved_at"]
    if isinstance(approved_at, str):
        approved_at = datetime.fromisoformat(approved_at)
    digest = entry["digest"]
    if (
        not isinstance(approved_at, datetime)
        or not isinstance(digest, str)
        or not _DIGEST.match(digest)
    ):
        raise PolicyError([f"{path}:0 approvals[{index}]: bad digest or approved_at"])
    if approved_at.tzinfo is None:
        approved_at = approved_at.replace(tzinfo=UTC)
    return Approval(digest, str(entry["reviewer"]), approved_at, str(entry["note"] or ""),
                    entry.get("summary"))


def latest_approval_for(policies_dir: Path, digest: str) -> Approval | None:
    """The most recent approval of exactly this digest, if any."""
    matching = [a for a in read_approvals(policies_dir) if a.digest == digest]
    return matching[-1] if matching else None


def require_approved(ps: PolicySet, policies_dir: Path) -> Approval:
    """The approval covering ``ps``; raise PolicyError when its digest was never approved."""
    approval = latest_approval_for(policies_dir, ps.digest)
    if approval is None:
        raise PolicyError([f"policy set {ps.digest} is not approved"])
    return approval


def approve(
    policies_dir: Path,
    *,
    reviewer: str,
    note: str,
    now: datetime,
    expected_digest: str | None = None,
    summary: dict[str, Any] | None = None,
) -> Approval:
    """Load the set strictly (an invalid set cannot be approved) and append its approval.

    ``expected_digest``: the digest the reviewer actually tested; refuse if the files have
    changed since, so nobody approves something they did not see. ``summary``: the
    preview's summary of this very set (``PreviewReport.summary``), stored with the approval.
    """
    reviewer, note = reviewer.strip(), note.strip()
    if not reviewer or _CONTROL.search(reviewer) or _CONTROL.search(note):
        raise PolicyError(["reviewer must be non-empty; reviewer and note must be single lines"])
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    ps = load_policy_set(Path(policies_dir))
    if expected_digest is not None and ps.digest != expected_digest:
        raise PolicyError(
            [f"policy set changed during review: {ps.digest} is not {expected_digest}"]
        )
    read_approvals(policies_dir)  # refuse to append to a corrupt history
    if summary is not None and summary.get("digest", ps.digest) != ps.digest:
        raise PolicyError(["the preview summary is of another policy set"])
    approval = Approval(ps.digest, reviewer, now.astimezone(UTC), note, summary)
    _append(approvals_path(policies_dir), approval)
    return approval


def _append(path: Path, approval: Approval) -> None:
    entry: dict[str, Any] = {
        "digest": approval.digest,
        "reviewer": approval.reviewer,
        "approved_at": approval.approved_at.isoformat(),
        "note": approval.note,
    }
    if approval.summary is not None:
        entry["summary"] = approval.summary
    text = yaml.safe_dump([entry], sort_keys=False, default_flow_style=False, allow_unicode=True)
    existing = path.read_text(encoding="utf-8") if path.exists() else _HEADER
    if existing and not existing.endswith("\n"):
        existing += "\n"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(existing + text, encoding="utf-8")
    os.replace(tmp, path)  # atomic: a reader never sees half an entry
