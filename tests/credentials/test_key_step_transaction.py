"""The security-key login step commits its writes together, in one transaction (issue 20
item 1): the throttle's reservation and reset, the taken challenge, the new sign count, the
session replaced under a new id, and the sealed audit record. On SQLite and PostgreSQL,
with a software authenticator."""
from __future__ import annotations

import json
from urllib.parse import quote

import pytest
from sqlalchemy import select

from authgate.composition.root import Services
from authgate.core.errors import StorageError
from authgate.core.values import Level
from authgate.factors.errors import WebAuthnFailed
from authgate.login.second_factor import SessionGone
from authgate.sessions.service import Issued
from authgate.storage.tables import audit_events
from authgate.storage.tables_factors import challenges, credentials
from authgate.web.steps import challenge_key
from tests.credentials.conftest import (
    MFA_URL,
    assert_transactions,
    audit_append_fails,
    sqlite_statements,
)
from tests.credentials.races import Start
from tests.credentials.soft_key import SoftKey
from tests.credentials.test_factor_escalation import post_json
from tests.credentials.test_totp_step_transaction import (
    META,
    chain_intact,
    factor_events,
    password_session,
)


def register(services: Services) -> SoftKey:
    key = SoftKey()
    options = json.loads(services.mfa.webauthn.begin_registration(
        key="r", username="alice", display_name="Alice"))
    services.mfa.webauthn.finish_registration(key="r", username="alice", name="Key",
                                              credential_json=key.register(options), meta=META)
    return key


def assertion(services: Services, key: SoftKey, session: Issued) -> str:
    """The session's challenge (``/login/webauthn/options``) signed by ``key``."""
    options = json.loads(services.mfa.webauthn.begin_authentication(
        key=challenge_key(session.record, "login"), username="alice", require_uv=False))
    return key.assert_(options)


def verify(services: Services, session: Issued, signed: str) -> Issued:
    return services.key_login.verify(session=session.record,
                                     challenge_key=challenge_key(session.record, "login"),
                                     credential_json=signed, require_uv=False, meta=META)


def key_audit(services: Services) -> list[tuple[str, str]]:
    with services.engine.connect() as conn:
        return [(r.outcome, r.reason) for r in conn.execute(
            select(audit_events).where(audit_events.c.event == "login.webauthn")
            .order_by(audit_events.c.id))]


def sign_count(services: Services) -> int:
    with services.engine.connect() as conn:
        return int(conn.execute(select(credentials.c.sign_count)).scalar_one())


def live_challenges(services: Services) -> int:
    with services.engine.connect() as conn:
        return len(conn.execute(select(challenges.c.id_hash)).all())


def test_an_accepted_assertion_raises_the_session_under_a_new_id(step_services) -> None:  # type: ignore[no-untyped-def]
    svc = step_services
    key = register(svc)
    old = password_session(svc)
    issued = verify(svc, old, assertion(svc, key, old))
    assert svc.sessions.resolve(old.token) is None
    raised = svc.sessions.resolve(issued.token)
    assert raised is not None and raised.level is Level.PHISHING_RESISTANT  # UV, no policy
    assert sign_count(svc) == 1 and live_challenges(svc) == 0
    assert key_audit(svc) == [("success", "webauthn_uv")]
    assert factor_events(svc) == 0  # the reservation was settled in the same commit
    assert chain_intact(svc) >= 1


def test_a_failure_before_commit_leaves_nothing_and_the_lane_resyncs(  # type: ignore[no-untyped-def]
        step_services, monkeypatch) -> None:
    """A database error at the last statement (the audit insert): the challenge not taken,
    the sign count as it was, no reservation, no record, the old session the one that
    works; the same assertion then goes through, with no gap in the audit chain."""
    svc = step_services
    key = register(svc)
    old = password_session(svc)
    signed = assertion(svc, key, old)
    with audit_append_fails(monkeypatch), pytest.raises(StorageError):
        verify(svc, old, signed)
    assert sign_count(svc) == 0 and live_challenges(svc) == 1
    assert factor_events(svc) == 0 and key_audit(svc) == []
    assert svc.sessions.resolve(old.token) is not None
    issued = verify(svc, old, signed)
    assert svc.sessions.resolve(issued.token) is not None
    assert svc.sessions.resolve(old.token) is None
    assert key_audit(svc) == [("success", "webauthn_uv")]
    assert chain_intact(svc) >= 1


def test_a_refused_assertion_spends_the_challenge_and_counts(step_services) -> None:  # type: ignore[no-untyped-def]
    """A bad signature: the challenge is gone all the same (single use) and the attempt
    counts; the sign count is untouched and the session stays at ``password``."""
    svc = step_services
    key = register(svc)
    old = password_session(svc)
    forged = json.loads(assertion(svc, key, old))
    forged["response"]["signature"] = forged["response"]["signature"][:-8] + "AAAAAAAA"
    with pytest.raises(WebAuthnFailed) as caught:
        verify(svc, old, json.dumps(forged))
    assert caught.value.reason == "bad_signature"
    assert live_challenges(svc) == 0 and sign_count(svc) == 0
    assert svc.sessions.resolve(old.token).level is Level.PASSWORD  # type: ignore[union-attr]
    assert key_audit(svc) == [("failure", "bad_signature")]
    assert factor_events(svc) == 1


def test_a_regressed_sign_count_is_refused_as_a_possible_clone(step_services) -> None:  # type: ignore[no-untyped-def]
    svc = step_services
    key = register(svc)
    first, second = password_session(svc), password_session(svc)
    verify(svc, first, assertion(svc, key, first))
    key.sign_count = 0  # a clone that never saw the first sign-in
    with pytest.raises(WebAuthnFailed) as caught:
        verify(svc, second, assertion(svc, key, second))
    assert caught.value.reason == "sign_count_regressed"
    assert sign_count(svc) == 1
    assert svc.sessions.resolve(second.token).level is Level.PASSWORD  # type: ignore[union-attr]
    assert key_audit(svc) == [("success", "webauthn_uv"), ("failure", "sign_count_regressed")]
    assert factor_events(svc) == 1


def test_a_session_ended_meanwhile_takes_nothing(step_services) -> None:  # type: ignore[no-untyped-def]
    svc = step_services
    key = register(svc)
    old = password_session(svc)
    signed = assertion(svc, key, old)
    svc.sessions.end(old.record)
    with pytest.raises(SessionGone):
        verify(svc, old, signed)
    assert sign_count(svc) == 0 and factor_events(svc) == 0
    assert key_audit(svc) == [("failure", "session_gone")]


def _verifies(svc: Services, job: tuple[str, str], start: Start) -> str:
    """One racer: the same password session (its token) and the same signed assertion."""
    token, signed = job
    session = svc.sessions.resolve(token)
    assert session is not None
    start()
    try:
        verify(svc, Issued(token, session), signed)
    except WebAuthnFailed as exc:
        return exc.reason
    return "accepted"


def test_one_challenge_is_used_once_across_processes(step_services, races) -> None:  # type: ignore[no-untyped-def]
    svc = step_services
    key = register(svc)
    old = password_session(svc)
    signed = assertion(svc, key, old)
    assert races.run(_verifies, [(old.token, signed)] * 3) == [
        "accepted", "challenge_mismatch", "challenge_mismatch"]
    assert key_audit(svc).count(("success", "webauthn_uv")) == 1
    assert svc.sessions.resolve(old.token) is None
    assert sign_count(svc) == 1
    assert chain_intact(svc) >= 3


def test_an_accepted_key_through_the_page_is_one_transaction(mfa, client, services  # type: ignore[no-untyped-def]
                                                             ) -> None:
    """Every write of ``POST /login/webauthn/verify`` between one BEGIN and one COMMIT
    (SQLite's own trace of every statement on every connection)."""
    mfa.enrol_totp(mfa.issue_code())
    client.post("/logout", data={"csrf_token": mfa.auth.csrf("/logout")})
    mfa.login_to()
    key = register(services)  # beside the TOTP app
    page = mfa.factor_page().get_data(as_text=True)
    q = quote(MFA_URL, safe="")
    options = post_json(mfa, f"/login/webauthn/options?rd={q}", page)
    assert options.status_code == 200
    signed = key.assert_(options.get_json())
    with sqlite_statements(services.engine) as statements:
        r = post_json(mfa, f"/login/webauthn/verify?rd={q}", page, signed)
    assert r.status_code == 200 and r.get_json()["ok"], r.get_data(as_text=True)[:300]
    assert_transactions(statements)


def _stored_meanwhile(svc: Services, monkeypatch: pytest.MonkeyPatch, count: int) -> None:
    """While the step checks the assertion (inside its transaction, the key already read),
    another connection stores ``count`` as the key's sign count and commits."""
    real = svc.mfa.webauthn.check_assertion

    def meanwhile(**kwargs):  # type: ignore[no-untyped-def]
        with svc.engine.begin() as other:
            other.execute(credentials.update().values(sign_count=count))
        return real(**kwargs)

    monkeypatch.setattr(svc.mfa.webauthn, "check_assertion", meanwhile)


@pytest.mark.parametrize("engine", ["postgres"], indirect=True)  # SQLite: the write lock
@pytest.mark.parametrize(("signs", "stored", "accepted"), [(2, 1, True), (5, 5, False),
                                                            (3, 4, False)])
def test_f2b_the_stored_count_at_commit_decides_not_the_one_read(  # type: ignore[no-untyped-def]
        step_services, monkeypatch, signs, stored, accepted) -> None:
    """Pen test F2b, security-key step. On PostgreSQL another request (a passkey sign-in
    with this key in another tab) may store a count between this step's read of the key
    and its UPDATE: a count above that one is accepted (it used to be compared with the
    count read, 0: refused as a possible clone); one at or below it is still refused."""
    svc = step_services
    key = register(svc)
    session = password_session(svc)
    key.sign_count = signs - 1  # assert_ counts one up
    signed = assertion(svc, key, session)
    _stored_meanwhile(svc, monkeypatch, stored)
    if accepted:
        issued = verify(svc, session, signed)
        assert svc.sessions.resolve(issued.token) is not None and sign_count(svc) == signs
        assert key_audit(svc) == [("success", "webauthn_uv")]
    else:
        with pytest.raises(WebAuthnFailed) as caught:
            verify(svc, session, signed)
        assert caught.value.reason == "sign_count_regressed" and sign_count(svc) == stored
        assert key_audit(svc) == [("failure", "sign_count_regressed")]
