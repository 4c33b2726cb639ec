"""Policy files: the strict YAML reader, approval by digest, lint and test cases.

This is the I/O side of ``authgate.policy``: it reads and writes files and hands the pure
engine a frozen :class:`~authgate.policy.values.PolicySet`.
"""
from __future__ import annotations

from authgate.policy.files.approval import (
    Approval,
    approve,
    latest_approval_for,
    require_approved,
)
from authgate.policy.files.loader import compute_digest, load_policy_set

__all__ = [
    "Approval",
    "approve",
    "compute_digest",
    "latest_approval_for",
    "load_policy_set",
    "require_approved",
]
