"""Every reason code the code writes into an audit record is in the catalogue.

The reasons come from ``AuditEvent(reason="...")`` and ``reason="..."`` arguments of the
recording helpers, and from the constant sets and refusal functions whose values become
reasons (WebAuthn failures, directory bind states, regulation refusals, enrolment-code
refusals, policy decisions). A reason written but not catalogued fails here.
"""
from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from authgate.audit.catalog import REASONS
from authgate.directory.ldap_states import _BIND_REASONS
from authgate.factors.errors import WEBAUTHN_REASONS
from authgate.login.password import _NO_BIND
from authgate.policy.files.cases import REASONS as DECISION_REASONS
from authgate.regulation.regulator import SPRAY_REASONS

PACKAGE = Path(__file__).resolve().parents[2] / "authgate"
#: (module, function) whose returned literals are refusal reasons written as audit reasons
REFUSAL_FUNCTIONS = (("regulation/rules.py", "judge"),
                     ("regulation/rules.py", "judge_factor"),
                     ("credentials/enrolment.py", "_why_refused"))
#: calls whose ``reason=`` literal ends up in ``AuditEvent.reason``
RECORDING_CALLS = ("AuditEvent", "for_request", "record", "_record", "_audit", "audit")


def _name(call: ast.Call) -> str:
    fn = call.func
    return fn.attr if isinstance(fn, ast.Attribute) else getattr(fn, "id", "")


def written_reasons() -> Iterator[tuple[str, str]]:
    """``(reason, where)`` for every literal ``reason=`` of a recording call."""
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and _name(node) in RECORDING_CALLS:
                # for_request(meta, event, outcome, reason, ...)
                if (_name(node) == "for_request" and len(node.args) > 3
                        and isinstance(node.args[3], ast.Constant)
                        and isinstance(node.args[3].value, str)):
                    yield node.args[3].value, f"{path.relative_to(PACKAGE)}:{node.lineno}"
                for kw in node.keywords:
                    if (kw.arg == "reason" and isinstance(kw.value, ast.Constant)
                            and isinstance(kw.value.value, str)):
                        yield kw.value.value, f"{path.relative_to(PACKAGE)}:{node.lineno}"


def returned_literals(module: str, function: str) -> set[str]:
    tree = ast.parse((PACKAGE / module).read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == function:
            for ret in ast.walk(node):
                if (isinstance(ret, ast.Return) and isinstance(ret.value, ast.Constant)
                        and ret.value.value):
                    found.add(str(ret.value.value))
    assert found, f"{module}:{function} returns no literal: update this test"
    return found


def _error_reasons() -> set[str]:
    """The ``reason`` of every error class in ``core.errors`` (directory answers among them)."""
    import authgate.core.errors as errors

    return {cls.reason for cls in vars(errors).values()
            if isinstance(cls, type) and issubclass(cls, errors.AuthgateError)}


def test_every_literal_reason_is_catalogued() -> None:
    missing = sorted({f"{reason} ({where})" for reason, where in written_reasons()
                      if reason not in REASONS})
    assert missing == []


def test_every_reason_constant_is_catalogued() -> None:
    sets = [WEBAUTHN_REASONS, _NO_BIND, SPRAY_REASONS, _error_reasons(),
            set(DECISION_REASONS), set(_BIND_REASONS.values()),
            *(returned_literals(m, f) for m, f in REFUSAL_FUNCTIONS)]
    missing = sorted(set().union(*sets) - set(REASONS))
    assert missing == []


def test_the_review_s_missing_reasons_are_catalogued() -> None:
    """The twelve the 2026-12 review found written but not catalogued."""
    for reason in ("user_throttled", "ip_throttled", "ad_lockout_guard", "repeated_password",
                   "challenge_mismatch", "sign_count_regressed", "malformed_input",
                   "unknown_user", "ambiguous_path", "groups_changed", "other_users_code",
                   "suspected_compromise"):
        assert reason in REASONS
