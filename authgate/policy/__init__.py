"""authgate's policy engine: who may reach which application, from where, with which proof.

Pure decision logic (Flask's ``sansio`` rule): plain values in, a :class:`Decision` out; no
Flask, no storage, no clock. The web layer builds a :class:`Subject` and a
:class:`~authgate.core.values.Resource`, calls :func:`decide`, and audits ``rule_id`` with
``PolicySet.digest``. See ``docs/policies.md`` for the language.

Reading policy files, approving them and running their test cases live in
``authgate.policy.files``; the live set with reload in ``authgate.policy.live``.
"""

from __future__ import annotations

from authgate.core.errors import PolicyError
from authgate.policy.engine import decide
from authgate.policy.explain import Explanation, explain
from authgate.policy.globals import PolicyGlobals
from authgate.policy.paths import normalize_path
from authgate.policy.values import Decision, PolicySet, Requirement, Rule, Subject, Verdict

__all__ = [
    "Decision",
    "Explanation",
    "PolicyError",
    "PolicySet",
    "Requirement",
    "Rule",
    "PolicyGlobals",
    "Subject",
    "Verdict",
    "decide",
    "explain",
    "normalize_path",
]
