"""Pen test F7: ``/login/passkey/options`` and ``/verify`` need no account and no password,
and each call was a database write (a stored challenge, a refusal record). One address
could make the gateway write as fast as it answers, on the database every ``/verify`` of
the city waits for. Now an address gets ``webauthn.passkey_requests_per_minute`` a minute
(per worker); past that it is answered 429 before anything is stored or recorded."""
from __future__ import annotations

import json
from pathlib import Path

from flask import Flask
from prometheus_client import REGISTRY
from sqlalchemy import func, select

from authgate.composition.root import Services, build_services
from authgate.core.clock import FixedClock
from authgate.storage.engine import migrate
from authgate.storage.tables import audit_events
from authgate.storage.tables_factors import challenges
from authgate.web import create_app
from tests.conftest import make_settings
from tests.credentials.test_passkey_step_transaction import register
from tests.fixtures.net import csrf_token

ATTACKER, NEIGHBOUR = "203.0.113.66", "198.51.100.20"


def portal(tmp_path: Path, users_file: Path, clock: FixedClock,
           per_minute: int) -> tuple[Flask, Services]:
    settings = make_settings(tmp_path, users_file, webauthn={
        "passkey_sign_in": True, "passkey_requests_per_minute": per_minute})
    migrate(settings.storage.url)
    built = build_services(settings, clock=clock)
    return create_app({"services": built, "TESTING": True}), built


def client_at(app: Flask, address: str):  # type: ignore[no-untyped-def]
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def count(svc: Services, table) -> int:  # type: ignore[no-untyped-def]
    with svc.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def limited(endpoint: str) -> float:
    return REGISTRY.get_sample_value("authgate_rate_limited_total",
                                     {"endpoint": endpoint}) or 0.0


def test_one_address_flooding_options_gets_429_and_stores_nothing_more(
        tmp_path: Path, users_file: Path, clock: FixedClock) -> None:
    app, svc = portal(tmp_path, users_file, clock, per_minute=10)
    client = client_at(app, ATTACKER)
    token = csrf_token(client.get("/login").get_data(as_text=True))
    before = limited("passkey_options")
    answers = []
    for n in range(25):  # a forged X-Forwarded-For from an untrusted peer changes nothing
        answers.append(client.post("/login/passkey/options", headers={
            "X-CSRFToken": token, "X-Forwarded-For": f"10.9.{n}.1"}))
    assert [a.status_code for a in answers] == [200] * 10 + [429] * 15
    refused = answers[-1]
    assert refused.get_json() == {"ok": False, "error": (
        "Too many passkey sign-ins from this network address. Wait a minute and try "
        "again, or sign in with your username and password.")}
    assert refused.headers["Retry-After"] == "6"  # one token every 6 s
    assert count(svc, challenges) == 10
    assert limited("passkey_options") - before == 15
    neighbour = client_at(app, NEIGHBOUR)
    token_n = csrf_token(neighbour.get("/login").get_data(as_text=True))
    assert neighbour.post("/login/passkey/options",
                          headers={"X-CSRFToken": token_n}).status_code == 200
    clock.advance(seconds=6)  # the attacker's next token
    assert client.post("/login/passkey/options",
                       headers={"X-CSRFToken": token}).status_code == 200
    svc.audit.close()
    svc.engine.dispose()


def test_a_limited_address_posting_assertions_writes_no_record(
        tmp_path: Path, users_file: Path, clock: FixedClock) -> None:
    app, svc = portal(tmp_path, users_file, clock, per_minute=4)
    client = client_at(app, ATTACKER)
    token = csrf_token(client.get("/login").get_data(as_text=True))
    junk = json.dumps({"id": "AAAA", "rawId": "AAAA", "type": "public-key", "response": {}})
    codes = [client.post("/login/passkey/verify", data=junk, content_type="application/json",
                         headers={"X-CSRFToken": token}).status_code for _ in range(4)]
    assert codes == [401] * 4  # refused, and each refusal recorded
    records = count(svc, audit_events)
    before = limited("passkey_verify")
    for _ in range(20):
        answer = client.post("/login/passkey/verify", data=junk,
                             content_type="application/json", headers={"X-CSRFToken": token})
        assert answer.status_code == 429 and int(answer.headers["Retry-After"]) >= 1
    assert count(svc, audit_events) == records
    assert limited("passkey_verify") - before == 20
    svc.audit.close()
    svc.engine.dispose()


def test_a_429_keeps_the_users_challenge_for_after_the_wait(
        tmp_path: Path, users_file: Path, clock: FixedClock) -> None:
    """Outside test of the limit, F2: the 429 of ``/verify`` had already taken the challenge
    handle from the page session, so the user's assertion failed after the wait too."""
    app, svc = portal(tmp_path, users_file, clock, per_minute=2)
    key, user = register(svc), client_at(app, ATTACKER)
    token = csrf_token(user.get("/login").get_data(as_text=True))
    options = user.post("/login/passkey/options", headers={"X-CSRFToken": token})
    other = client_at(app, ATTACKER)  # another client behind the same address
    other_token = csrf_token(other.get("/login").get_data(as_text=True))
    assert other.post("/login/passkey/options",
                      headers={"X-CSRFToken": other_token}).status_code == 200
    assertion = key.assert_(options.get_json())
    sent = {"data": assertion, "content_type": "application/json",
            "headers": {"X-CSRFToken": token}}
    refused = user.post("/login/passkey/verify", **sent)
    assert refused.status_code == 429 and "Set-Cookie" not in refused.headers
    clock.advance(seconds=30)
    accepted = user.post("/login/passkey/verify", **sent)
    assert accepted.status_code == 200 and accepted.get_json()["ok"] is True
    assert svc.sessions.sessions_of("alice") != []
    svc.audit.close()
    svc.engine.dispose()


def refusals(svc: Services, address: str) -> list[dict[str, str]]:
    with svc.engine.connect() as conn:
        rows = conn.execute(select(audit_events.c.detail).where(
            audit_events.c.event == "request.refused",
            audit_events.c.client_ip == address).order_by(audit_events.c.id)).scalars()
        return [json.loads(detail) for detail in rows]


def test_refused_requests_of_one_address_are_counted_past_a_rate_not_recorded(
        tmp_path: Path, users_file: Path, clock: FixedClock) -> None:
    """Outside test of the limit, F1: a POST without its CSRF token, a wrong method or an
    oversized body was refused before any limit and recorded, one record each: ~370 records
    a second from one address. Now an address's first refusals a minute are recorded, the
    rest counted, and the next record carries the count."""
    settings = make_settings(tmp_path, users_file, webauthn={"passkey_sign_in": True},
                             server={"refusal_records_per_minute": 5})
    migrate(settings.storage.url)
    svc = build_services(settings, clock=clock)
    app = create_app({"services": svc, "TESTING": True})
    attacker, neighbour = client_at(app, ATTACKER), client_at(app, NEIGHBOUR)
    before = limited("refusal_records")
    for _ in range(30):
        assert attacker.post("/login/passkey/options").status_code == 400  # no CSRF token
        assert attacker.get("/login/passkey/verify").status_code == 405
    assert len(refusals(svc, ATTACKER)) == 5
    assert limited("refusal_records") - before == 55
    assert neighbour.post("/logout").status_code == 400  # another address: recorded
    assert len(refusals(svc, NEIGHBOUR)) == 1
    clock.advance(seconds=12)  # one token back
    assert attacker.post("/logout").status_code == 400
    recorded = refusals(svc, ATTACKER)
    assert len(recorded) == 6 and recorded[-1]["unrecorded"] == "55"
    assert "unrecorded" not in recorded[0]
    svc.audit.close()
    svc.engine.dispose()


def test_the_limit_is_checked_at_start_up() -> None:
    from authgate.config import settings_from_mapping
    from authgate.core.errors import ConfigError

    try:
        settings_from_mapping({"webauthn": {"passkey_requests_per_minute": 0}})
    except ConfigError as exc:
        assert "webauthn.passkey_requests_per_minute: must be at least 1" in exc.problems
    else:
        raise AssertionError("a limit of 0 was accepted")
