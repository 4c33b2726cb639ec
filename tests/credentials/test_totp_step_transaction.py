"""The TOTP login step commits its writes together, in one transaction (issue 20 item 1):
the throttle's reservation and reset, the accepted time step, the session replaced under a
new id, and the sealed audit record. On SQLite and PostgreSQL."""
from __future__ import annotations

from datetime import timedelta

import pyotp
import pytest
from sqlalchemy import select

from authgate.audit.checkpoints import TrustedKeys
from authgate.audit.verify import verify_store
from authgate.composition.root import Services
from authgate.core.errors import StorageError
from authgate.core.values import Level, RequestMeta
from authgate.factors.errors import CodeReplayed
from authgate.login.second_factor import SessionGone
from authgate.sessions.service import Issued
from authgate.storage.tables import audit_events
from authgate.storage.tables_factors import credentials
from authgate.storage.tables_regulation import regulation_events
from tests.credentials.conftest import (
    MFA_URL,
    assert_transactions,
    audit_append_fails,
    sqlite_statements,
)
from tests.credentials.races import Start

META = RequestMeta(client_ip="192.0.2.7", user_agent="test", request_id="r1")


def enrol(services: Services, username: str = "alice") -> str:
    """An active TOTP credential whose last accepted step is a minute ago; its secret."""
    pending = services.mfa.totp.start(username=username, name="Phone", meta=META)
    earlier = services.clock.now() - timedelta(minutes=1)
    services.mfa.credentials.accept_step(pending.credential_id,
                                         int(earlier.timestamp()) // 30, earlier, activate=True)
    return pending.secret


def password_session(services: Services, username: str = "alice") -> Issued:
    return services.sessions.start(services.directory.lookup(username), level=Level.PASSWORD,
                                   client_ip="192.0.2.7", user_agent="test")


def code(services: Services, secret: str) -> str:
    return pyotp.TOTP(secret).at(services.clock.now())


def totp_audit(services: Services) -> list[tuple[str, str]]:
    with services.engine.connect() as conn:
        return [(r.outcome, r.reason) for r in conn.execute(
            select(audit_events).where(audit_events.c.event == "login.totp")
            .order_by(audit_events.c.id))]


def last_step(services: Services) -> int | None:
    with services.engine.connect() as conn:
        return conn.execute(select(credentials.c.last_step)).scalar_one()  # type: ignore[no-any-return]


def factor_events(services: Services) -> int:
    with services.engine.connect() as conn:
        return len(conn.execute(select(regulation_events).where(
            regulation_events.c.subject == "factor:alice")).all())


def chain_intact(services: Services) -> int:
    log = services.audit
    trusted = TrustedKeys.build(keyring=log.keyring, signer=log.signer)
    return verify_store(log.store, keyring=log.keyring, trusted=trusted).records


def test_accepted_step_raises_the_session_under_a_new_id(step_services) -> None:  # type: ignore[no-untyped-def]
    svc = step_services
    secret = enrol(svc)
    old = password_session(svc)
    issued = svc.factor_login.totp(session=old.record, code=code(svc, secret), meta=META)
    assert svc.sessions.resolve(old.token) is None
    raised = svc.sessions.resolve(issued.token)
    assert raised is not None and raised.level is Level.MFA
    assert last_step(svc) == int(svc.clock.now().timestamp()) // 30
    assert totp_audit(svc) == [("success", "totp_ok")]
    assert factor_events(svc) == 0  # the reservation was settled in the same commit
    assert chain_intact(svc) >= 1


def test_a_failure_before_commit_leaves_nothing_and_the_lane_resyncs(  # type: ignore[no-untyped-def]
        step_services, monkeypatch) -> None:
    """A database error at the last statement (the audit insert): no step spent, no
    reservation, no audit record, the old session still the one that works; the same code
    then goes through, and the audit chain has no gap (the lane re-read its head)."""
    svc = step_services
    secret = enrol(svc)
    before = last_step(svc)
    old = password_session(svc)
    with audit_append_fails(monkeypatch), pytest.raises(StorageError):
        svc.factor_login.totp(session=old.record, code=code(svc, secret), meta=META)
    assert last_step(svc) == before
    assert factor_events(svc) == 0
    assert totp_audit(svc) == []
    assert svc.sessions.resolve(old.token) is not None
    issued = svc.factor_login.totp(session=old.record, code=code(svc, secret), meta=META)
    assert svc.sessions.resolve(issued.token) is not None
    assert svc.sessions.resolve(old.token) is None
    assert totp_audit(svc) == [("success", "totp_ok")]
    assert chain_intact(svc) >= 1


def test_a_replayed_code_commits_only_its_counted_failure(step_services) -> None:  # type: ignore[no-untyped-def]
    svc = step_services
    secret = enrol(svc)
    first, second = password_session(svc), password_session(svc)
    svc.factor_login.totp(session=first.record, code=code(svc, secret), meta=META)
    with pytest.raises(CodeReplayed):
        svc.factor_login.totp(session=second.record, code=code(svc, secret), meta=META)
    assert svc.sessions.resolve(second.token).level is Level.PASSWORD  # type: ignore[union-attr]
    assert totp_audit(svc) == [("success", "totp_ok"), ("failure", "code_replayed")]
    assert factor_events(svc) == 1


def test_a_session_ended_meanwhile_spends_nothing(step_services) -> None:  # type: ignore[no-untyped-def]
    svc = step_services
    secret = enrol(svc)
    before = last_step(svc)
    old = password_session(svc)
    svc.sessions.end(old.record)
    with pytest.raises(SessionGone):
        svc.factor_login.totp(session=old.record, code=code(svc, secret), meta=META)
    assert last_step(svc) == before and factor_events(svc) == 0
    assert totp_audit(svc) == [("failure", "session_gone")]


def _spends_the_code(svc: Services, secret: str, start: Start) -> str:
    """One racer: its own password session and the code typed, then the step."""
    session = password_session(svc)
    typed = pyotp.TOTP(secret).at(svc.clock.now())
    start()
    try:
        svc.factor_login.totp(session=session.record, code=typed, meta=META)
    except CodeReplayed:
        return "replayed"
    return "accepted"


def test_one_code_is_accepted_once_across_processes(step_services, races) -> None:  # type: ignore[no-untyped-def]
    svc = step_services
    secret = enrol(svc)
    assert races.run(_spends_the_code, [secret] * 3) == ["accepted", "replayed", "replayed"]
    assert totp_audit(svc).count(("success", "totp_ok")) == 1


def test_an_accepted_step_through_the_page_is_one_transaction(mfa, client, clock, services  # type: ignore[no-untyped-def]
                                                               ) -> None:
    """Every write of ``POST /login/totp`` between one BEGIN and one COMMIT (SQLite's own
    trace of every statement on every connection)."""
    secret = mfa.enrol_totp(mfa.issue_code())
    client.post("/logout", data={"csrf_token": mfa.auth.csrf("/logout")})
    clock.advance(seconds=30)
    page = mfa.login_to().get_data(as_text=True)
    with sqlite_statements(services.engine) as statements:
        r = mfa.post("/login/totp", page, code=mfa.totp(secret), rd=MFA_URL)
    assert r.status_code == 303
    assert_transactions(statements)
