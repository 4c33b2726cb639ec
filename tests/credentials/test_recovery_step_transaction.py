"""The recovery-code login step in two short transactions (issue 20 item 1): (a) the
throttle's reservation and the unspent codes read, (b) the argon2 check outside any
transaction, (c) the code spent conditionally, the throttle settled, the session replaced
under a new id and the sealed audit record, in one COMMIT. On SQLite and PostgreSQL."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from authgate.composition.root import Services
from authgate.core.errors import StorageError
from authgate.core.values import Level
from authgate.credentials.recovery import RecoveryService
from authgate.factors.errors import InvalidRecoveryCode
from authgate.login.second_factor import SessionGone
from authgate.storage.sql_recovery_codes import SqlRecoveryCodeStore
from authgate.storage.tables import audit_events
from authgate.storage.tables_factors import recovery_codes
from tests.credentials.conftest import (
    MFA_URL,
    assert_transactions,
    audit_append_fails,
    sqlite_statements,
)
from tests.credentials.races import Start
from tests.credentials.test_totp_step_transaction import (
    META,
    chain_intact,
    factor_events,
    password_session,
)


def codes_for(services: Services, username: str = "alice") -> tuple[str, ...]:
    return services.mfa.recovery.regenerate(username=username, meta=META)


def recovery_audit(services: Services) -> list[tuple[str, str, str]]:
    with services.engine.connect() as conn:
        return [(r.outcome, r.reason, r.detail) for r in conn.execute(
            select(audit_events).where(audit_events.c.event == "login.recovery")
            .order_by(audit_events.c.id))]


def outcomes(services: Services) -> list[tuple[str, str]]:
    return [(outcome, reason) for outcome, reason, _ in recovery_audit(services)]


def spent(services: Services) -> int:
    with services.engine.connect() as conn:
        return len(conn.execute(select(recovery_codes.c.id).where(
            recovery_codes.c.used_at.is_not(None))).all())


def test_an_accepted_code_raises_the_session_under_a_new_id(step_services) -> None:  # type: ignore[no-untyped-def]
    svc = step_services
    codes = codes_for(svc)
    old = password_session(svc)
    result = svc.recovery_login.recovery(session=old.record, code=codes[3], meta=META)
    assert result.remaining == 9
    assert svc.sessions.resolve(old.token) is None
    raised = svc.sessions.resolve(result.issued.token)
    assert raised is not None and raised.level is Level.MFA
    assert spent(svc) == 1
    assert outcomes(svc) == [("success", "recovery_code_used")]
    assert '"remaining":"9"' in recovery_audit(svc)[0][2].replace(" ", "")
    assert factor_events(svc) == 0  # the reservation was settled in the completion
    assert chain_intact(svc) >= 1
    with pytest.raises(InvalidRecoveryCode):  # spent: never twice
        svc.recovery_login.recovery(session=password_session(svc).record, code=codes[3],
                                    meta=META)


def test_a_failure_in_the_completion_leaves_the_code_unspent_and_the_lane_resyncs(  # type: ignore[no-untyped-def]
        step_services, monkeypatch) -> None:
    """A database error at the completion's last statement (the audit insert): the code
    unspent, the old session still the one that works, no success record, the reservation
    of transaction (a) still counted; the same code then goes through, with no gap in the
    audit chain (the lane re-read its head)."""
    svc = step_services
    codes = codes_for(svc)
    old = password_session(svc)
    with audit_append_fails(monkeypatch), pytest.raises(StorageError):
        svc.recovery_login.recovery(session=old.record, code=codes[0], meta=META)
    assert spent(svc) == 0
    assert outcomes(svc) == []
    assert factor_events(svc) == 1  # (a) committed: the attempt counts until it succeeds
    assert svc.sessions.resolve(old.token) is not None
    result = svc.recovery_login.recovery(session=old.record, code=codes[0], meta=META)
    assert svc.sessions.resolve(result.issued.token) is not None
    assert svc.sessions.resolve(old.token) is None
    assert spent(svc) == 1 and factor_events(svc) == 0
    assert outcomes(svc) == [("success", "recovery_code_used")]
    assert chain_intact(svc) >= 1


def test_a_code_spent_between_check_and_completion_rolls_the_completion_back(  # type: ignore[no-untyped-def]
        step_services, monkeypatch) -> None:
    """The race, made deterministic: another request spends the matched code while this
    one runs argon2. The conditional UPDATE changes no row, so the session replacement is
    rolled back with it and the attempt counts as a failure."""
    svc = step_services
    codes = codes_for(svc)
    old = password_session(svc)
    real_check = RecoveryService.check_code

    def check_then_lose(self, **kwargs):  # type: ignore[no-untyped-def]
        verified = real_check(self, **kwargs)
        assert SqlRecoveryCodeStore(svc.engine).spend(verified.code_id, svc.clock.now())
        return verified

    monkeypatch.setattr(RecoveryService, "check_code", check_then_lose)
    with pytest.raises(InvalidRecoveryCode) as caught:
        svc.recovery_login.recovery(session=old.record, code=codes[0], meta=META)
    assert caught.value.reason == "recovery_code_reused"
    assert svc.sessions.resolve(old.token).level is Level.PASSWORD  # type: ignore[union-attr]
    assert len(svc.sessions.sessions_of("alice")) == 1  # no new session committed
    assert outcomes(svc) == [("failure", "recovery_code_reused")]
    assert factor_events(svc) == 1
    assert chain_intact(svc) >= 1


def test_a_wrong_code_commits_only_its_counted_failure(step_services) -> None:  # type: ignore[no-untyped-def]
    svc = step_services
    codes_for(svc)
    old = password_session(svc)
    with pytest.raises(InvalidRecoveryCode):
        svc.recovery_login.recovery(session=old.record, code="aaaa-bbbb-cccc", meta=META)
    assert svc.sessions.resolve(old.token).level is Level.PASSWORD  # type: ignore[union-attr]
    assert spent(svc) == 0
    assert outcomes(svc) == [("failure", "invalid_recovery_code")]
    assert factor_events(svc) == 1


def test_a_session_ended_meanwhile_spends_nothing(step_services) -> None:  # type: ignore[no-untyped-def]
    svc = step_services
    codes = codes_for(svc)
    old = password_session(svc)
    svc.sessions.end(old.record)
    with pytest.raises(SessionGone):
        svc.recovery_login.recovery(session=old.record, code=codes[0], meta=META)
    assert spent(svc) == 0
    assert factor_events(svc) == 0  # the reservation given back in the completion
    assert outcomes(svc) == [("failure", "session_gone")]


def _recovers(svc: Services, code: str, start: Start) -> tuple[str, bool, bool]:
    """One racer: its own password session, then the code. Its outcome: the reason, and
    (won) its old session dead and the new one at ``mfa``, or (lost) its session alive."""
    session = password_session(svc)
    start()
    try:
        result = svc.recovery_login.recovery(session=session.record, code=code, meta=META)
    except InvalidRecoveryCode as exc:
        return exc.reason, svc.sessions.resolve(session.token) is not None, True
    old_dead = svc.sessions.resolve(session.token) is None
    raised = svc.sessions.resolve(result.issued.token)
    return "accepted", old_dead, raised is not None and raised.level is Level.MFA


def test_one_code_used_by_three_processes_is_accepted_once(step_services, races) -> None:  # type: ignore[no-untyped-def]
    svc = step_services
    codes = codes_for(svc)
    got = races.run(_recovers, [codes[0]] * 3)
    winners = [g for g in got if g[0] == "accepted"]
    assert winners == [("accepted", True, True)]  # the winner's old session id is dead
    losers = [g for g in got if g[0] != "accepted"]
    assert all(reason in ("recovery_code_reused", "invalid_recovery_code") and alive
               for reason, alive, _ in losers)  # each loser keeps its password session
    assert spent(svc) == 1
    assert outcomes(svc).count(("success", "recovery_code_used")) == 1
    assert outcomes(svc).count(("failure", "recovery_code_reused")) + outcomes(svc).count(
        ("failure", "invalid_recovery_code")) == 2
    assert chain_intact(svc) >= 3


def test_an_accepted_code_through_the_page_is_two_transactions(mfa, client, services,  # type: ignore[no-untyped-def]
                                                               monkeypatch) -> None:
    """``POST /login/recovery``: every write between BEGIN and COMMIT of one of exactly two
    transactions (the reservation, the completion) on one connection (SQLite's own trace of
    every statement on every connection), and argon2 between them, outside both."""
    mfa.enrol_totp(mfa.issue_code())
    codes = codes_for(services)
    client.post("/logout", data={"csrf_token": mfa.auth.csrf("/logout")})
    page = mfa.login_to().get_data(as_text=True)
    checked_at: list[int] = []
    real_check = RecoveryService.check_code
    with sqlite_statements(services.engine) as statements:

        def noted(self, **kwargs):  # type: ignore[no-untyped-def]
            checked_at.append(len(statements))
            return real_check(self, **kwargs)

        monkeypatch.setattr(RecoveryService, "check_code", noted)
        r = mfa.post("/login/recovery", page, code=codes[0], rd=MFA_URL)
    assert r.status_code == 303
    (_, first_commit), (second_begin, _) = assert_transactions(statements, count=2)
    assert len(checked_at) == 1 and first_commit < checked_at[0] <= second_begin
