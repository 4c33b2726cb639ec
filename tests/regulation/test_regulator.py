"""The regulator in the real login flow (``LoginService``, the Flask pages) in front of
``FakeAd``, a directory that keeps badPwdCount the way AD does (threshold 3, 30 min)."""
from __future__ import annotations

import logging
import random
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select

from authgate.composition.root import Services, build_services
from authgate.core.clock import FixedClock
from authgate.login.password import LoginAttempt, LoginStatus
from authgate.regulation import AttemptOutcome
from authgate.regulation.timing import NoFloor
from authgate.storage.engine import migrate
from authgate.storage.tables import audit_events
from authgate.storage.tables_regulation import metadata
from tests.conftest import make_settings
from tests.fixtures.net import CSRF_FIELD
from tests.regulation.conftest import FakeAd, policy_dir

PASSWORD = "Correct-Horse-42"
USERS = {"alice": PASSWORD, "bob": PASSWORD, **{f"user{n:02d}": PASSWORD for n in range(1, 21)}}
Build = Callable[..., tuple[Services, FakeAd]]


@pytest.fixture
def build(tmp_path: Path, users_file: Path, clock: FixedClock) -> Build:
    def make(**regulation: object) -> tuple[Services, FakeAd]:
        fake = FakeAd(clock, dict(USERS))
        settings = make_settings(tmp_path, users_file, policy={
            "path": str(policy_dir(tmp_path, **regulation)), "require_approval": False})
        migrate(settings.storage.url)
        services = build_services(settings, clock=clock, directory=fake)  # type: ignore[arg-type]
        services.regulator.floor = NoFloor()  # timing has its own test and benchmark
        return services, fake
    return make


def login(services: Services, user: str, password: str, ip: str) -> LoginStatus:
    return services.login.password_step(LoginAttempt(user, password, ip, "UA", "req")).status


def events(services: Services, prefix: str) -> list[dict]:  # type: ignore[type-arg]
    with services.engine.connect() as conn:
        rows = conn.execute(select(audit_events).order_by(audit_events.c.id)).mappings()
        return [dict(r) for r in rows if r["event"].startswith(prefix)]


def test_thousand_attempts_never_lock_alice_and_her_familiar_ip_still_works(
        build: Build, clock: FixedClock) -> None:
    services, fake = build(max_failures_per_user=2)
    home = "10.20.30.40"
    assert login(services, "alice", PASSWORD, home) is LoginStatus.OK
    rng = random.Random(7)
    for n in range(1000):
        ip = f"198.51.100.{n % 7}"
        name = rng.choice(["alice", "ALICE", "alice@city.test", "city\\alice"])
        assert login(services, name, f"guess-{n}", ip) is LoginStatus.INVALID
        clock.advance(seconds=rng.choice([1, 20, 90]))
        if n % 100 == 99:
            assert login(services, "alice", PASSWORD, home) is LoginStatus.OK, n
    assert "alice" not in fake.locked and fake.max_bad <= 2
    assert fake.binds < 100  # most attempts never reached the directory


def test_familiar_ip_keeps_working_while_the_attack_holds_the_rest(build: Build) -> None:
    services, fake = build(max_failures_per_user=2)
    assert login(services, "bob", PASSWORD, "10.0.0.8") is LoginStatus.OK
    for n in range(20):
        login(services, "bob", f"x{n}", f"198.51.100.{n}")
    assert fake.bad["bob"] == 1  # the unfamiliar share (1 of AD's 2 spare failures)
    assert login(services, "bob", "yet another", "198.51.100.99") is LoginStatus.INVALID
    assert fake.binds == 2  # held: her sign-in and the one unfamiliar failure only
    assert login(services, "bob", "typo", "10.0.0.8") is LoginStatus.INVALID  # the reserve
    assert fake.bad["bob"] == 2 and "bob" not in fake.locked
    reasons = [e["reason"] for e in events(services, "login.password")]
    assert reasons.count("ad_lockout_guard") >= 19


def test_spray_over_twenty_users_bans_the_source_and_reports_it(build: Build) -> None:
    services, fake = build(spray_distinct_users=5)
    for n in range(1, 21):
        assert login(services, f"user{n:02d}", "Winter2026!", "192.0.2.66") is \
            LoginStatus.INVALID
    assert fake.binds == 5  # banned after the threshold: the rest never reached AD
    spray = {e["reason"]: e for e in events(services, "ban.spray")}
    assert set(spray) == {"spray_source", "password_spray"}  # the IP, and the password too
    source = spray["spray_source"]
    assert source["outcome"] == "deny" and source["client_ip"] == "192.0.2.66"
    assert "severity" in source["detail"] and "high" in source["detail"]
    assert "Winter" not in repr(spray)
    refused = [e["reason"] for e in events(services, "login.password")][5:]
    assert set(refused) == {"spray_source"}
    assert login(services, "user01", PASSWORD, "192.0.2.66") is LoginStatus.INVALID


def test_repeated_wrong_password_is_refused_before_the_bind(build: Build) -> None:
    """With the password at admission (the proposed one-line change to LoginService), an
    old password a phone keeps retrying costs AD one bad count, not one per retry."""
    services, fake = build()
    regulator = services.regulator
    admission = regulator.admit_password(username="bob", ip="10.9.9.9", password="old-pw")
    assert admission.allowed
    regulator.record_password(admission=admission, outcome=AttemptOutcome.WRONG_PASSWORD,
                              password="old-pw")
    for _ in range(10):
        again = regulator.admit_password(username="BOB", ip="10.9.9.7", password="old-pw")
        assert (again.allowed, again.reason) == (False, "repeated_password")
    admission = regulator.admit_password(username="bob", ip="10.9.9.9", password=PASSWORD)
    assert admission.allowed
    regulator.record_password(admission=admission, outcome=AttemptOutcome.SUCCESS,
                              password=PASSWORD)
    assert regulator.active_bans() == []


def test_margin_is_checked_at_start_up(build: Build, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="authgate.regulation"):
        build(max_failures_per_user=5)  # a policy at 5 per user against AD's threshold of 3
    assert any("AD locks accounts at 3" in r.getMessage() and r.levelno == logging.ERROR
               for r in caplog.records)


def test_no_password_or_plain_hash_in_any_table(build: Build) -> None:
    services, _ = build()
    login(services, "alice", "hunter2-very-secret", "10.1.1.1")
    with services.engine.connect() as conn:
        dump = repr([conn.execute(select(t)).all() for t in metadata.sorted_tables])
    assert "hunter2" not in dump
    import hashlib
    assert hashlib.sha256(b"hunter2-very-secret").hexdigest() not in dump


def test_banned_page_is_the_wrong_password_page(build: Build) -> None:
    import re

    from authgate.web import create_app

    services, fake = build(max_failures_per_user=1)
    client = create_app({"services": services, "TESTING": True}).test_client()

    def post(password: str):  # type: ignore[no-untyped-def]
        page = client.get("/login", environ_base={"REMOTE_ADDR": "203.0.113.5"})
        token = CSRF_FIELD.search(page.get_data(as_text=True))
        assert token
        return client.post("/login", data={"csrf_token": token.group(1), "username": "bob",
                                           "password": password, "rd": ""},
                           environ_base={"REMOTE_ADDR": "203.0.113.5"})
    wrong, banned = post("nope-1"), post("nope-2")
    strip = lambda r: re.sub(r'(value|data-csrf)="[^"]*"', "", r.get_data(as_text=True))  # noqa: E731
    assert wrong.status_code == banned.status_code == 401
    assert strip(wrong) == strip(banned)
    assert fake.binds == 1
    assert [e["reason"] for e in events(services, "login.password")] == [
        "invalid_credentials", "user_banned"]


def test_right_password_in_a_refused_state_costs_nothing(build: Build) -> None:
    """773 / 532 / 533 / 701 come only with the right password: AD counted no bad password,
    so neither does authgate (else a must-change user would hit the AD guard)."""
    services, fake = build()
    regulator = services.regulator
    for _ in range(6):
        admission = regulator.admit_password(username="bob", ip="10.7.7.7")
        assert admission.allowed
        regulator.record_password(admission=admission,
                                  outcome=AttemptOutcome.RIGHT_PASSWORD_REFUSED,
                                  password=PASSWORD)  # e.g. password_must_change
    assert login(services, "bob", PASSWORD, "10.7.7.7") is LoginStatus.OK
    with services.engine.connect() as conn:
        from authgate.storage.tables_regulation import regulation_passwords
        assert conn.execute(select(regulation_passwords)).all() == []


def test_unreadable_ad_policy_falls_back_to_one_bind_per_hour(build: Build,
                                                               clock: FixedClock) -> None:
    from authgate.core.errors import DirectoryUnavailable

    services, fake = build(max_failures_per_user=2)
    calls = []

    def down() -> tuple[int, object]:
        calls.append(1)
        raise DirectoryUnavailable("no DC answered")
    services.regulator.ad._read = down  # type: ignore[attr-defined]
    services.regulator.ad._value = None  # type: ignore[attr-defined]
    services.regulator.ad._read_at = None  # type: ignore[attr-defined]
    assert login(services, "bob", "wrong-1", "10.1.1.1") is LoginStatus.INVALID  # reached AD
    assert login(services, "bob", "wrong-2", "10.1.1.2") is LoginStatus.INVALID  # held
    assert fake.binds == 1 and len(calls) == 1  # one read, then backing off
    clock.advance(minutes=63)
    assert login(services, "bob", PASSWORD, "10.1.1.1") is LoginStatus.OK


def test_password_change_gives_its_slot_back_but_resets_nothing(build: Build) -> None:
    services, fake = build(max_failures_per_user=5)
    regulator = services.regulator
    admission = regulator.admit_password(username="bob", ip="10.6.6.6")
    assert admission.allowed
    regulator.record_password(admission=admission, outcome=AttemptOutcome.WRONG_PASSWORD,
                              password="guess")  # chain 1
    admission = regulator.admit_password(username="bob", ip="10.6.6.6")
    assert admission.allowed
    regulator.record_password(admission=admission, outcome=AttemptOutcome.PASSWORD_CHANGED,
                              password=PASSWORD)  # chain stays 1
    assert regulator.admit_password(username="bob", ip="10.6.6.6").allowed  # chain 2 = B
    assert regulator.admit_password(username="bob", ip="10.6.6.7").reason == \
        "ad_lockout_guard"


def test_an_admission_is_settled_once(build: Build) -> None:
    """The reservation travels with the Admission: a second record is ignored (it would
    give back a slot twice), and a refusal carries nothing to record."""
    services, _ = build(max_failures_per_user=5)
    regulator = services.regulator
    first = regulator.admit_password(username="bob", ip="10.5.5.5")  # chain 1
    assert first.allowed and regulator.admit_password(username="bob", ip="10.5.5.5").allowed
    for _ in range(2):  # chain 2 -> 1, then nothing
        regulator.record_password(admission=first, outcome=AttemptOutcome.UNAVAILABLE,
                                  password="x")
    assert regulator.admit_password(username="bob", ip="10.5.5.5").allowed  # chain 2 = B
    assert regulator.admit_password(username="bob", ip="10.5.5.6").reason == \
        "ad_lockout_guard"  # the first slot came back once, not twice
    refused = regulator.admit_password(username="bob", ip="10.5.5.7")
    assert not refused.allowed and refused.reservation is None
