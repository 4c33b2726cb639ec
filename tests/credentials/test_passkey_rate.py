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


def test_the_limit_is_checked_at_start_up() -> None:
    from authgate.config import settings_from_mapping
    from authgate.core.errors import ConfigError

    try:
        settings_from_mapping({"webauthn": {"passkey_requests_per_minute": 0}})
    except ConfigError as exc:
        assert "webauthn.passkey_requests_per_minute: must be at least 1" in exc.problems
    else:
        raise AssertionError("a limit of 0 was accepted")
