"""authgate's policy engine: who may reach which application, from where, with which proof.

Pure decision logic (Flask's ``sansio`` rule): plain values in, a :class:`Decision` out; no
Flask, no storage, no clock. The web layer builds a :class:`Subject` and a
:class:`~authgate.model.Resource`, calls :func:`decide`, and audits ``rule_id`` with
``PolicySet.digest``. See ``docs/policies.md`` for the language.
"""

from __future__ import annotations

from authgate.errors import PolicyError
from authgate.policy.approval import Approval, approve, latest_approval_for, require_approved
from authgate.policy.engine import decide, normalize_path
from authgate.policy.explain import Explanation, explain
from authgate.policy.loader import compute_digest, load_policy_set
from authgate.policy.model import Decision, PolicySet, Requirement, Rule, Subject, Verdict
from authgate.policy.settings import Settings

__all__ = [
    "Approval",
    "Decision",
    "Explanation",
    "PolicyError",
    "PolicySet",
    "Requirement",
    "Rule",
    "Settings",
    "Subject",
    "Verdict",
    "approve",
    "compute_digest",
    "decide",
    "explain",
    "latest_approval_for",
    "load_policy_set",
    "normalize_path",
    "require_approved",
]
