"""Second outside test of the request limits: refusals that name no account were one audit
record per request, as fast as one address could send them (an unsafe ``rd``: ~14,900 a
minute, a console visit without a session: ~16,100). Now each address's first
``server.refusal_records_per_minute`` a minute are recorded, the rest counted, and the next
record says how many (``regulation.rate.RecordSampler``). What names an account is still
recorded every time: a signed-in user's step-up challenge here, sign-in attempts elsewhere."""
from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select

from authgate.composition.root import Services, build_services
from authgate.core.clock import FixedClock
from authgate.core.values import Level
from authgate.storage.engine import migrate
from authgate.storage.tables import audit_events
from authgate.web import create_app
from tests.conftest import make_settings, session_cookie

ATTACKER = "203.0.113.66"


@pytest.fixture
def portal(tmp_path: Path, users_file: Path, clock: FixedClock
           ) -> Iterator[tuple[Flask, Services]]:
    settings = make_settings(tmp_path, users_file, server={"refusal_records_per_minute": 5})
    migrate(settings.storage.url)
    built = build_services(settings, clock=clock)
    yield create_app({"services": built, "TESTING": True}), built
    built.audit.close()
    built.engine.dispose()


def from_address(app: Flask, address: str = ATTACKER):  # type: ignore[no-untyped-def]
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def recorded(svc: Services, event: str) -> list[tuple[str, dict[str, str]]]:
    with svc.engine.connect() as conn:
        rows = conn.execute(select(audit_events.c.username, audit_events.c.detail).where(
            audit_events.c.event == event).order_by(audit_events.c.id)).all()
    return [(name, json.loads(detail) if detail else {}) for name, detail in rows]


def test_unsafe_return_urls_of_one_address_are_counted_past_the_rate(
        portal, clock: FixedClock) -> None:  # type: ignore[no-untyped-def]
    app, svc = portal
    client = from_address(app)
    for n in range(40):
        assert client.get(f"/login?rd=https://evil{n}.example/").status_code == 200
    assert len(recorded(svc, "redirect.refused")) == 5
    clock.advance(seconds=12)  # one token back
    client.get("/login?rd=https://evil.example/again")
    refused = recorded(svc, "redirect.refused")
    assert len(refused) == 6 and refused[-1][1]["unrecorded"] == "35"
    assert refused[-1][1]["url"] == "https://evil.example/again"


def test_console_visits_without_a_session_are_counted_past_the_rate(
        portal, clock: FixedClock) -> None:  # type: ignore[no-untyped-def]
    app, svc = portal
    client = from_address(app)
    for _ in range(30):
        assert client.get("/admin").status_code == 303
    assert len(recorded(svc, "console.access")) == 5
    from_address(app, "198.51.100.20").get("/audit/")  # another address: its own budget
    assert len(recorded(svc, "console.access")) == 6
    clock.advance(seconds=12)
    client.get("/admin")
    assert recorded(svc, "console.access")[-1][1]["unrecorded"] == "25"


def test_a_signed_in_users_challenges_are_always_recorded(portal) -> None:  # type: ignore[no-untyped-def]
    app, svc = portal
    client = from_address(app)
    for _ in range(6):
        client.get("/admin")  # spends the address's budget
    session_cookie(client, svc, "adam", Level.PASSWORD)
    for _ in range(10):
        assert client.get("/admin/users").status_code == 303  # asked to step up
    named = [d for name, d in recorded(svc, "console.access") if name == "adam"]
    assert len(named) == 10
