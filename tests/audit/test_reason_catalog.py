"""Every reason code the code writes into an audit record is in the catalogue.

The reasons come from ``AuditEvent(reason="...")`` and ``reason="..."`` arguments of the
recording helpers, and from the constant sets and refusal functions whose values become
reasons (WebAuthn failures, directory bind states, regulation refusals, enrolment-code
refusals, policy decisions). A reason written but not catalogued fails here.
"""
from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

from authgate.audit.catalog import EVENTS, REASONS
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


def _literals(node: ast.expr) -> Iterator[str]:
    """The strings an expression can be: a constant, either branch of ``a if c else b``,
    or an f-string as a pattern (``{...}`` becomes ``*``)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        yield node.value
    elif isinstance(node, ast.IfExp):
        yield from _literals(node.body)
        yield from _literals(node.orelse)
    elif isinstance(node, ast.JoinedStr):
        yield "".join(v.value if isinstance(v, ast.Constant) else "*" for v in node.values)


def _is_outcome(node: ast.expr) -> bool:
    """``Outcome.X``, or ``Outcome.X if ... else Outcome.Y``."""
    if isinstance(node, ast.IfExp):
        return _is_outcome(node.body) and _is_outcome(node.orelse)
    return (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
            and node.value.id == "Outcome")


def outcome_neighbours() -> Iterator[tuple[str, str, str]]:
    """``(kind, text, where)`` for every call shape and tuple that pairs an ``Outcome``
    with strings: the string before it is an event, the one after it a reason
    (``_record("login.totp", Outcome.SUCCESS, "totp_ok", ...)``, ``(Outcome.DENY,
    "service_bind_refused")``), plus every ``event=``/``reason=`` keyword and the reason of
    every ``BanOrder(subject, reason)``."""
    for path in PACKAGE.rglob("*.py"):
        where = str(path.relative_to(PACKAGE))
        for node in ast.walk(ast.parse(path.read_text())):
            items = (node.args if isinstance(node, ast.Call)
                     else node.elts if isinstance(node, ast.Tuple) else [])
            for i, item in enumerate(items):
                if _is_outcome(item):
                    for kind, j in (("event", i - 1), ("reason", i + 1)):
                        if 0 <= j < len(items):
                            yield from ((kind, t, f"{where}:{node.lineno}")
                                        for t in _literals(items[j]))
            if isinstance(node, ast.Call):
                for kw in node.keywords:  # ``reason=`` elsewhere is an operator's "why"
                    if kw.arg == "event" or (kw.arg == "reason"
                                             and _name(node) in RECORDING_CALLS):
                        yield from ((kw.arg, t, f"{where}:{node.lineno}")
                                    for t in _literals(kw.value))
                if _name(node) == "BanOrder" and len(node.args) > 1:
                    yield from (("reason", t, f"{where}:{node.lineno}")
                                for t in _literals(node.args[1]))


def _reason_positions(tree: ast.Module) -> dict[str, int]:
    """Function name → index of its positional ``reason`` parameter (``self`` excluded)."""
    found: dict[str, int] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name != "__init__":
            names = [a.arg for a in node.args.posonlyargs + node.args.args
                     if a.arg not in ("self", "cls")]
            if "reason" in names:
                found[node.name] = names.index("reason")
    return found


def positional_reasons() -> Iterator[tuple[str, str, str]]:
    """``("reason", text, where)`` for literals passed positionally as a ``reason``
    parameter (``_refuse(name, "refused", meta)``): to a function of the same module, or
    of another when only one function in the package has that name."""
    trees = [(str(p.relative_to(PACKAGE)), ast.parse(p.read_text()))
             for p in PACKAGE.rglob("*.py")]
    local = {where: _reason_positions(tree) for where, tree in trees}
    defined: dict[str, int] = {}
    for where, tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef):
                defined[node.name] = defined.get(node.name, 0) + 1
    unique = {name: i for positions in local.values() for name, i in positions.items()
              if defined[name] == 1}
    for where, tree in trees:
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            index = local[where].get(_name(node), unique.get(_name(node)))
            if index is not None and index < len(node.args):
                yield from (("reason", t, f"{where}:{node.lineno}")
                            for t in _literals(node.args[index]))


def _catalogued(kind: str, text: str) -> bool:
    """A reason in ``REASONS`` or an event in ``EVENTS`` (``area.*`` entries cover their
    area); an f-string pattern must match at least one."""
    names = REASONS if kind == "reason" else EVENTS
    pattern = re.compile(re.escape(text).replace(r"\*", ".+") + "$")
    return any(pattern.match(name) or (name.endswith(".*") and text.startswith(name[:-1]))
               for name in names)


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


def test_every_reason_and_event_next_to_an_outcome_is_catalogued() -> None:
    """Every call shape: positional reasons and events around an ``Outcome``, keywords,
    conditional values and f-strings (issue 16 item 8: ``password_ok``, ``totp_ok``, ...
    were written positionally and missed by the keyword-only scan)."""
    found = [*outcome_neighbours(), *positional_reasons()]
    assert any(t == "password_ok" for _, t, _ in found), "the scan misses positional reasons"
    missing = sorted({f"{kind} {text} ({where})" for kind, text, where in found
                      if text and not _catalogued(kind, text)})
    assert missing == []


def test_the_review_s_missing_reasons_are_catalogued() -> None:
    """The twelve the 2026-12 review found written but not catalogued."""
    for reason in ("user_throttled", "ip_throttled", "ad_lockout_guard", "repeated_password",
                   "challenge_mismatch", "sign_count_regressed", "malformed_input",
                   "unknown_user", "ambiguous_path", "groups_changed", "other_users_code",
                   "suspected_compromise"):
        assert reason in REASONS


def _exercise(auth, client, services, clock) -> None:  # type: ignore[no-untyped-def]
    """Real flows through the pages and the use cases, as many reasons as cheaply reachable."""
    import pyotp

    from authgate.core.values import RequestMeta
    from tests.conftest import ALICE_PASSWORD, verify_headers

    meta = RequestMeta(client_ip="127.0.0.1")
    client.get("/verify", headers=verify_headers())  # no session
    for name, password in (("nobody.here", "Spring2026!"), ("alice", "wrong one"),
                           ("carol", "carol's long password"), ("", "x"),
                           *(("bob", f"guess {n}") for n in range(4)),
                           ("alice", ALICE_PASSWORD)):
        auth.login(name, password)
    client.get("/verify", headers=verify_headers())
    client.post("/login", data={"username": "alice", "password": "x"})  # no CSRF token
    client.post("/password/change", data={"csrf_token": auth.csrf(), "username": "x"})
    mfa = services.mfa
    issued = mfa.enrolment.issue(username="alice", issued_by="adam",
                                 ttl=__import__("datetime").timedelta(hours=1), meta=meta)
    mfa.enrolment.redeem(username="alice", code="wrong-code", meta=meta,
                         regulator=services.regulator)
    mfa.enrolment.redeem(username="alice", code=issued.code, meta=meta,
                         regulator=services.regulator)
    pending = mfa.totp.start(username="alice", name="app", meta=meta)
    mfa.totp.confirm(username="alice", credential_id=pending.credential_id,
                     code=pyotp.TOTP(pending.secret).at(clock.now()), meta=meta)
    clock.advance(seconds=60)
    for code in ("000000", pyotp.TOTP(pending.secret).at(clock.now())):
        try:
            mfa.totp.verify(username="alice", code=code, meta=meta)
        except Exception:  # noqa: BLE001,S110 - the refusal is what is recorded
            pass
    codes = mfa.recovery.regenerate(username="alice", meta=meta)
    mfa.recovery.use(username="alice", code=codes[0], meta=meta)
    mfa.factors.rename(username="alice", credential_id=pending.credential_id, name="x",
                       meta=meta)
    mfa.factors.reset_all(username="alice", by="adam", reason="lost phone", meta=meta)
    auth.logout()


def test_every_reason_and_event_the_flows_write_is_catalogued(auth, client, services, clock,  # type: ignore[no-untyped-def]
                                                              settings) -> None:
    """The dynamic half: run the real flows against a real SQLite trail and check every
    (event, reason) stored, whatever way the code built it."""
    import sqlite3

    _exercise(auth, client, services, clock)
    with sqlite3.connect(settings.storage.url.removeprefix("sqlite:///")) as db:
        seen = set(db.execute("SELECT DISTINCT event, reason FROM audit_events"))
    assert len(seen) >= 20, seen
    assert {("login.password", "password_ok"), ("login.totp", "totp_ok")} <= seen
    missing = sorted((e, r) for e, r in seen
                     if not _catalogued("event", e) or (r and r not in REASONS))
    assert missing == []


def test_the_severity_table_names_only_catalogued_events_and_reasons() -> None:
    """Issue 16 item 7: one severity table beside the catalogue (``catalog.SEVERITIES``)."""
    from authgate.audit.catalog import SEVERITIES

    for event, outcome, reason, level, _ in SEVERITIES:
        assert event == "*" or _catalogued("event", event), event
        assert reason == "*" or reason in REASONS, reason
        assert outcome == "*" or outcome in {o for _, outs in EVENTS.values() for o in outs}
        assert 0 <= level <= 7
