"""A passkey sign-in commits its writes together, in one transaction (issue 20 item 1): the
challenge taken, the new sign count, the throttle's reservation and its settlement, the
session started at ``phishing_resistant`` and the sealed audit record. The assertion is
checked and the directory asked before it, outside any transaction. Every outcome leaves
one record. On SQLite and PostgreSQL, with a software authenticator."""
from __future__ import annotations

import json
import sqlite3

import pytest
from sqlalchemy import select

from authgate.composition.root import Services
from authgate.core.errors import DirectoryUnavailable, StorageError
from authgate.core.values import Identity, Level
from authgate.factors.errors import WebAuthnFailed
from authgate.login.passkey import PasskeyRefused
from authgate.regulation import FactorOutcome
from authgate.sessions.service import Issued
from authgate.storage.regulation_rows import factor_subject
from authgate.storage.tables import audit_events
from authgate.storage.tables_regulation import regulation_events
from authgate.web.passkey import _REFUSED
from tests.credentials.conftest import (
    assert_transactions,
    audit_append_fails,
    sqlite_statements,
)
from tests.credentials.races import Start
from tests.credentials.soft_key import SoftKey
from tests.credentials.test_key_step_transaction import live_challenges, sign_count
from tests.credentials.test_totp_step_transaction import META, chain_intact
from tests.fixtures.net import csrf_token

EVENTS = ("login.passkey", "login.webauthn", "login.factor")


def register(services: Services, username: str = "alice") -> SoftKey:
    """A discoverable credential (the user handle kept by the key) for ``username``."""
    key = SoftKey()
    options = json.loads(services.mfa.webauthn.begin_registration(
        key="r", username=username, display_name=username))
    services.mfa.webauthn.finish_registration(key="r", username=username, name="Key",
                                              credential_json=key.register(options), meta=META)
    return key


def signed(services: Services, key: SoftKey, handle: str = "h") -> str:
    """The browser's part: options for ``handle``, signed by ``key``."""
    options = services.passkey_login.options(handle=handle, client_ip=META.client_ip)
    return key.assert_(json.loads(options))


def sign_in(services: Services, assertion: str, handle: str = "h") -> Issued:
    return services.passkey_login.sign_in(handle=handle, credential_json=assertion, meta=META)


def records(services: Services) -> list[tuple[str, str, str]]:
    """(event, outcome, reason) of every sign-in record, oldest first."""
    with services.engine.connect() as conn:
        return [(r.event, r.outcome, r.reason) for r in conn.execute(
            select(audit_events).where(audit_events.c.event.in_(EVENTS))
            .order_by(audit_events.c.id))]


def last_record(services: Services) -> tuple[str, str, str, str, dict[str, str]]:
    """The newest sign-in record: event, outcome, reason, user, detail (parsed)."""
    with services.engine.connect() as conn:
        r = conn.execute(select(audit_events).where(audit_events.c.event.in_(EVENTS))
                         .order_by(audit_events.c.id.desc())).first()
    assert r is not None and r.request_id == META.request_id
    return r.event, r.outcome, r.reason, r.username, json.loads(r.detail or "{}")


def sessions(services: Services, username: str = "alice") -> int:
    return len(services.sessions.sessions_of(username))


def counted(services: Services, username: str = "alice") -> int:
    """The user's second-factor attempts the throttle counts (failures and reservations)."""
    with services.engine.connect() as conn:
        return len(conn.execute(select(regulation_events).where(
            regulation_events.c.subject == factor_subject(username))).all())


def forged(assertion: str) -> str:
    body = json.loads(assertion)
    body["response"]["signature"] = body["response"]["signature"][:-8] + "AAAAAAAA"
    return json.dumps(body)


def test_an_accepted_passkey_starts_one_session_with_one_record(step_services) -> None:  # type: ignore[no-untyped-def]
    svc = step_services
    key = register(svc)
    issued = sign_in(svc, signed(svc, key))
    session = svc.sessions.resolve(issued.token)
    assert session is not None and session.level is Level.PHISHING_RESISTANT
    assert session.username == "alice" and sessions(svc) == 1
    assert sign_count(svc) == 1 and live_challenges(svc) == 0
    assert records(svc) == [("login.passkey", "success", "passkey_uv")]  # no second one
    row_id = svc.mfa.credentials.list_for("alice")[0].id
    assert last_record(svc)[3:] == ("alice", {"credential": row_id})
    assert counted(svc) == 0  # the reservation was settled in the same commit
    assert chain_intact(svc) >= 1


@pytest.mark.parametrize("broken", ["audit", "session"])
def test_a_failure_before_commit_leaves_nothing_and_the_lane_resyncs(  # type: ignore[no-untyped-def]
        step_services, monkeypatch, broken) -> None:
    """A database error at the audit insert (the last statement) or at the session insert:
    the challenge not taken, the sign count as it was, no reservation, no record, no
    session; the same assertion then goes through, with no gap in the audit chain."""
    from authgate.storage.sql_login_step import SqlStepWrites

    svc = step_services
    key = register(svc)
    assertion = signed(svc, key)
    with monkeypatch.context() as patched:
        if broken == "session":
            patched.setattr(SqlStepWrites, "add_session", lambda self, record: self.cur.execute(
                "INSERT INTO no_such_table VALUES (1)"))
            with pytest.raises(StorageError):
                sign_in(svc, assertion)
        else:
            with audit_append_fails(patched), pytest.raises(StorageError):
                sign_in(svc, assertion)
    assert sign_count(svc) == 0 and live_challenges(svc) == 1
    assert counted(svc) == 0 and records(svc) == [] and sessions(svc) == 0
    issued = sign_in(svc, assertion)
    assert svc.sessions.resolve(issued.token) is not None and sessions(svc) == 1
    assert records(svc) == [("login.passkey", "success", "passkey_uv")]
    assert chain_intact(svc) >= 1


def test_a_replayed_assertion_starts_nothing(step_services) -> None:  # type: ignore[no-untyped-def]
    """The same assertion again (its challenge spent), or under a new challenge: refused,
    one record each; still one session."""
    svc = step_services
    key = register(svc)
    assertion = signed(svc, key)
    sign_in(svc, assertion)
    with pytest.raises(WebAuthnFailed) as again:
        sign_in(svc, assertion)
    svc.passkey_login.options(handle="h2", client_ip=META.client_ip)
    with pytest.raises(WebAuthnFailed) as elsewhere:
        sign_in(svc, assertion, handle="h2")
    assert again.value.reason == "challenge_mismatch"
    assert elsewhere.value.reason == "challenge_mismatch"
    assert sessions(svc) == 1 and sign_count(svc) == 1 and live_challenges(svc) == 0
    assert records(svc) == [("login.passkey", "success", "passkey_uv"),
                            ("login.webauthn", "failure", "challenge_mismatch"),
                            ("login.webauthn", "failure", "challenge_mismatch")]


def test_a_refused_assertion_spends_the_challenge_and_counts_nothing(step_services  # type: ignore[no-untyped-def]
                                                                     ) -> None:
    """A bad signature: the challenge is gone all the same (single use), one record names
    the key's owner; the sign count is untouched, and it is not counted against the
    user, as before: anyone may send an assertion, no password needed, so counting it
    would let a stranger lock the owner out."""
    svc = step_services
    key = register(svc)
    with pytest.raises(WebAuthnFailed) as caught:
        sign_in(svc, forged(signed(svc, key)))
    assert caught.value.reason == "bad_signature"
    assert live_challenges(svc) == 0 and sign_count(svc) == 0 and sessions(svc) == 0
    assert records(svc) == [("login.webauthn", "failure", "bad_signature")]
    assert last_record(svc)[3] == "alice"
    assert counted(svc) == 0


def test_a_disabled_account_commits_its_counted_attempt_and_the_challenge(  # type: ignore[no-untyped-def]
        step_services) -> None:
    """A genuine passkey of an account the directory no longer offers: refused, the
    challenge spent, the new sign count kept (clone detection), the attempt counted."""
    svc = step_services
    key = register(svc, "carol")  # disabled in the users file
    with pytest.raises(PasskeyRefused) as caught:
        sign_in(svc, signed(svc, key))
    assert caught.value.reason == "account_unavailable"
    assert live_challenges(svc) == 0 and sign_count(svc) == 1 and sessions(svc, "carol") == 0
    assert records(svc) == [("login.passkey", "failure", "account_unavailable")]
    assert counted(svc, "carol") == 1


def test_a_throttled_user_is_refused_with_one_record(step_services) -> None:  # type: ignore[no-untyped-def]
    """Even with a genuine passkey: no session, and one record, with the request id and
    the throttle's precise reason (it used to leave the regulator's ``login.factor``
    without the request id beside it)."""
    svc = step_services
    key = register(svc)
    limit = svc.policies.current.settings.regulation.second_factor_max_failures
    for _ in range(limit):
        admission = svc.regulator.admit_factor(username="alice")
        svc.regulator.record_factor(admission=admission, outcome=FactorOutcome.FAILURE)
    assertion, before = signed(svc, key), counted(svc)
    with pytest.raises(PasskeyRefused) as caught:
        sign_in(svc, assertion)
    assert caught.value.reason == "refused" and sessions(svc) == 0
    assert last_record(svc) == ("login.passkey", "failure", "refused", "alice",
                                {"cause": "factor_banned",
                                 "credential": svc.mfa.credentials.list_for("alice")[0].id})
    assert records(svc).count(("login.factor", "deny", "factor_banned")) == 0
    assert live_challenges(svc) == 0 and counted(svc) == before


def test_a_directory_outage_is_audited_and_spends_only_the_challenge(  # type: ignore[no-untyped-def]
        step_services, monkeypatch) -> None:
    svc = step_services
    key = register(svc)
    assertion = signed(svc, key)

    def down(username: str) -> Identity | None:
        raise DirectoryUnavailable("no directory server answered")

    monkeypatch.setattr(svc.directory, "lookup", down)
    with pytest.raises(DirectoryUnavailable):
        sign_in(svc, assertion)
    assert records(svc) == [("login.passkey", "error", "directory_unavailable")]
    assert live_challenges(svc) == 0 and sign_count(svc) == 0
    assert counted(svc) == 0 and sessions(svc) == 0


def test_the_directory_is_asked_while_no_write_lock_is_held(services, monkeypatch  # type: ignore[no-untyped-def]
                                                            ) -> None:
    """The lookup may be LDAP (slow): while it runs, another connection can take SQLite's
    write lock at once (``BEGIN IMMEDIATE`` without waiting)."""
    key = register(services)
    path = services.engine.url.database
    assert path
    real, free = services.directory.lookup, []

    def probing(username: str) -> Identity | None:
        other = sqlite3.connect(path, timeout=0, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            other.execute("ROLLBACK")
            free.append(True)
        except sqlite3.OperationalError:
            free.append(False)
        finally:
            other.close()
        return real(username)

    monkeypatch.setattr(services.directory, "lookup", probing)
    sign_in(services, signed(services, key))
    assert free == [True]


@pytest.mark.parametrize(("meanwhile", "reason", "left"), [
    ("the same assertion", "challenge_mismatch", 1),
    ("another sign-in with the key", "sign_count_regressed", 1),
    ("the key removed", "unknown_credential", 0),
])
def test_what_changed_while_the_directory_was_asked_is_caught_at_commit(  # type: ignore[no-untyped-def]
        step_services, monkeypatch, meanwhile, reason, left) -> None:
    """The checks before the transaction read without locking, so the transaction checks
    again what another request may have changed since: the challenge (taken by a DELETE),
    the key (still registered), its sign count (stored only if above the stored one)."""
    svc = step_services
    key = register(svc)
    assertion, real = signed(svc, key), svc.directory.lookup

    def interleaved(username: str) -> Identity | None:
        monkeypatch.setattr(svc.directory, "lookup", real)  # once
        if meanwhile == "the same assertion":
            sign_in(svc, assertion)
        elif meanwhile == "another sign-in with the key":
            sign_in(svc, signed(svc, key, handle="h2"), handle="h2")
        else:
            svc.mfa.credentials.delete(svc.mfa.credentials.list_for("alice")[0].id, "alice")
        return real(username)

    monkeypatch.setattr(svc.directory, "lookup", interleaved)
    with pytest.raises(WebAuthnFailed) as caught:
        sign_in(svc, assertion)
    assert caught.value.reason == reason
    assert sessions(svc) == left and counted(svc) == 0
    assert last_record(svc)[:3] == ("login.webauthn", "failure", reason)
    assert live_challenges(svc) == 0


def signs_in(svc: Services, assertion: str, start: Start) -> str:
    """One racer: the same browser handle and assertion, from another worker."""
    start()
    try:
        sign_in(svc, assertion)
    except WebAuthnFailed as exc:
        return exc.reason
    return "accepted"


def test_one_assertion_raced_by_three_processes_starts_one_session(  # type: ignore[no-untyped-def]
        step_services, races) -> None:
    svc = step_services
    key = register(svc)
    assertion = signed(svc, key)
    assert races.run(signs_in, [assertion] * 3) == [
        "accepted", "challenge_mismatch", "challenge_mismatch"]
    assert sessions(svc) == 1 and sign_count(svc) == 1
    assert records(svc).count(("login.passkey", "success", "passkey_uv")) == 1
    assert len(records(svc)) == 3  # one record per request
    assert chain_intact(svc) >= 3


# -- through the page ----------------------------------------------------------------------
def _options(client, page: str = "/login") -> tuple[str, dict[str, object]]:  # type: ignore[no-untyped-def]
    """The login page's script, first half: its CSRF token and the passkey options."""
    token = csrf_token(client.get(page).get_data(as_text=True))
    options = client.post("/login/passkey/options", headers={"X-CSRFToken": token})
    assert options.status_code == 200
    return token, options.get_json()


def _verify(client, token: str, assertion: str):  # type: ignore[no-untyped-def]
    return client.post("/login/passkey/verify", data=assertion,
                       content_type="application/json", headers={"X-CSRFToken": token})


def test_a_passkey_through_the_page_is_one_transaction(passkey_app) -> None:  # type: ignore[no-untyped-def]
    """Every write of ``POST /login/passkey/verify`` between one BEGIN and one COMMIT
    (SQLite's own trace of every statement on every connection)."""
    app, svc = passkey_app
    key, client = register(svc), app.test_client()
    token, options = _options(client)
    assertion = key.assert_(options)
    with sqlite_statements(svc.engine) as statements:
        r = _verify(client, token, assertion)
    assert r.status_code == 200 and r.get_json()["ok"], r.get_data(as_text=True)[:300]
    assert_transactions(statements, writes_at_least=5)


def test_every_refusal_gets_the_same_answer(passkey_app) -> None:  # type: ignore[no-untyped-def]
    """A forged signature, a replay (the request copied, its page cookie too) and a
    disabled account: the browser cannot tell them apart (the reason is in the audit log
    only); the genuine passkey gets in once."""
    app, svc = passkey_app
    alice, carol = register(svc), register(svc, "carol")
    stranger = app.test_client()
    token, options = _options(stranger)
    forged_answer = _verify(stranger, token, forged(alice.assert_(options)))
    browser, cookie = app.test_client(), app.config["SESSION_COOKIE_NAME"]
    token, options = _options(browser)
    assertion, copied = alice.assert_(options), browser.get_cookie(cookie).value
    accepted = _verify(browser, token, assertion)
    browser.set_cookie(cookie, copied)
    replayed = _verify(browser, token, assertion)
    former = app.test_client()
    token, options = _options(former)
    disabled = _verify(former, token, carol.assert_(options))
    assert accepted.status_code == 200 and accepted.get_json()["ok"]
    answers = {(r.status_code, r.get_data(as_text=True))
               for r in (forged_answer, replayed, disabled)}
    assert len(answers) == 1
    [(status, body)] = answers
    assert status == 401 and json.loads(body) == {"ok": False, "error": _REFUSED}
    assert [reason for _, _, reason in records(svc)] == [
        "bad_signature", "passkey_uv", "challenge_mismatch", "account_unavailable"]
    assert sessions(svc) == 1
