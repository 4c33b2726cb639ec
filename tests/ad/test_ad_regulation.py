"""Issue 7 against the real Samba AD DC (lockoutThreshold 3, 30 min window): authgate never
locks an account in AD, the familiar IP keeps working, parallel attempts cannot slip past the
budget, and a spray is banned and reported. Binds are counted by wrapping the real
``LdapDirectory``'s one bind; badPwdCount and lockoutTime are read from AD as Administrator."""
from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from authgate.composition.root import Services, build_services
from authgate.config.settings import LdapDirectorySettings
from authgate.core.clock import SystemClock
from authgate.directory.ldap import LdapDirectory
from authgate.login.password import LoginAttempt, LoginStatus
from authgate.regulation.timing import NoFloor
from authgate.storage.engine import migrate
from authgate.storage.tables import audit_events
from tests.conftest import make_settings
from tests.fixtures.net import CSRF_FIELD
from tests.regulation.conftest import policy_dir

pytestmark = pytest.mark.integration


class CountingDirectory:
    """The real LdapDirectory; every bind it sends to the DC is counted."""

    def __init__(self, inner: LdapDirectory) -> None:
        self._inner = inner
        self.binds = 0
        lock = threading.Lock()
        bind_once = inner._bind_once

        def counted(**kw: Any) -> None:
            nonlocal lock
            with lock:
                self.binds += 1
            bind_once(**kw)
        inner._bind_once = counted  # type: ignore[method-assign]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


Build = Callable[..., tuple[Services, CountingDirectory]]


@pytest.fixture
def build(tmp_path: Path, users_file: Path, ldap_settings: LdapDirectorySettings
          ) -> Iterator[Build]:
    made: list[LdapDirectory] = []

    def make(**regulation: object) -> tuple[Services, CountingDirectory]:
        made.append(LdapDirectory(settings=ldap_settings))
        counting = CountingDirectory(made[-1])
        settings = make_settings(tmp_path, users_file, policy={
            "path": str(policy_dir(tmp_path, **regulation)), "require_approval": False})
        migrate(settings.storage.url)
        services = build_services(settings, clock=SystemClock(),
                                  directory=counting)  # type: ignore[arg-type]
        services.regulator.floor = NoFloor()  # type: ignore[attr-defined]  # timing: benchmarks
        return services, counting
    yield make
    for d in made:
        d.close()


def reset(directory: LdapDirectory, ad: Any, *users: str) -> None:
    """A successful bind resets badPwdCount in AD (so later tests start clean)."""
    for user in users:
        directory.authenticate(username=user, password=ad.password(user))


def login(services: Services, user: str, password: str, ip: str) -> LoginStatus:
    return services.login.password_step(LoginAttempt(user, password, ip, "UA", "r")).status


def web_login(client: Any, ip: str, username: str, password: str) -> Any:
    env = {"REMOTE_ADDR": ip}
    page = client.get("/login", environ_base=env).get_data(as_text=True)
    token = CSRF_FIELD.search(page)
    assert token
    return client.post("/login", data={"csrf_token": token.group(1), "username": username,
                                       "password": password, "rd": ""}, environ_base=env)


def test_thousand_attempts_never_lock_alice_in_ad(build: Build, ad: Any, admin: Any,
                                                  directory: LdapDirectory) -> None:
    from authgate.web import create_app

    services, counting = build(max_failures_per_user=2)
    client = create_app({"services": services, "TESTING": True}).test_client()
    home = "10.20.30.40"
    try:
        assert web_login(client, home, "alice", ad.password("alice")).status_code in (302, 303)
        assert admin.bad_password_count("alice") == 0
        client.get("/logout")
        names = ["alice", "ALICE", "alice@city.test", "CITY\\alice"]
        for n in range(1000):
            status = login(services, names[n % 4], f"guess-{n}", f"198.51.100.{n % 9}")
            assert status is LoginStatus.INVALID
        assert admin.bad_password_count("alice") < 3
        assert int(admin.attribute("alice", "lockoutTime") or 0) == 0
        assert counting.binds <= 1 + 1  # her own success + the unfamiliar share (1)
        other = create_app({"services": services, "TESTING": True}).test_client()
        assert web_login(other, home, "alice", ad.password("alice")).status_code in (302, 303)
        assert admin.bad_password_count("alice") == 0  # AD reset it on her success
    finally:
        reset(directory, ad, "alice")


def test_fifty_concurrent_attempts_at_most_five_reach_ad(build: Build, ad: Any, admin: Any,
                                                         directory: LdapDirectory) -> None:
    services, counting = build(max_failures_per_user=5, max_failures_per_ip=100)
    barrier = threading.Barrier(50)

    def attempt(n: int) -> LoginStatus:
        barrier.wait()
        return login(services, "bob", f"parallel-{n}", f"198.51.100.{n}")
    try:
        with ThreadPoolExecutor(50) as pool:
            statuses = list(pool.map(attempt, range(50)))
        assert set(statuses) == {LoginStatus.INVALID}
        assert counting.binds <= 5
        assert counting.binds == 2  # in fact AD's budget, T - 1, bounds it first
        assert admin.bad_password_count("bob") == 2
        assert int(admin.attribute("bob", "lockoutTime") or 0) == 0
    finally:
        reset(directory, ad, "bob")


def test_spray_over_twenty_users_is_banned_and_audited(build: Build, ad: Any, admin: Any,
                                                       directory: LdapDirectory) -> None:
    services, counting = build(spray_distinct_users=5)
    users = [f"user{n:02d}" for n in range(1, 21)]
    before = [admin.bad_password_count(u) for u in users[:6]]
    try:
        for user in users:
            assert login(services, user, "Winter2026!", "192.0.2.66") is LoginStatus.INVALID
        assert counting.binds == 5
        after = [admin.bad_password_count(u) for u in users[:6]]
        assert [a - b for a, b in zip(after, before)] == [1, 1, 1, 1, 1, 0]
        with services.engine.connect() as conn:
            rows = conn.execute(select(audit_events).where(
                audit_events.c.event == "ban.spray")).mappings().all()
        source = [r for r in rows if r["reason"] == "spray_source"]
        assert len(source) == 1 and source[0]["client_ip"] == "192.0.2.66"
        assert "high" in source[0]["detail"]
        assert login(services, "user07", ad.password("user07"), "192.0.2.66") is \
            LoginStatus.INVALID  # banned source: not even the right password gets through
        assert counting.binds == 5
    finally:
        reset(directory, ad, *users[:5])


def test_rightful_user_gets_in_while_the_guard_holds(build: Build, ad: Any, admin: Any,
                                                     directory: LdapDirectory) -> None:
    """Issue 15 finding 6: 1,000 wrong passwords, each from a new address, put the AD guard
    on alice; her right password from yet another new address still gets in (it matches the
    verifier of the password AD last accepted, and pwdLastSet has not moved), AD's
    badPwdCount never reaches the threshold and nothing is locked."""
    services, counting = build(max_failures_per_user=2, max_failures_per_ip=5)
    threshold = int(ad.lockout_threshold)
    try:
        assert login(services, "alice", ad.password("alice"), "10.15.0.1") is LoginStatus.OK
        worst = 0
        for n in range(1000):
            ip = f"198.18.{n // 200}.{n % 200 + 1}"
            assert login(services, "alice", f"guess-{n}", ip) is LoginStatus.INVALID
            if n % 100 == 0:
                worst = max(worst, admin.bad_password_count("alice"))
        worst = max(worst, admin.bad_password_count("alice"))
        assert worst < threshold
        guard = [r for r in _login_reasons(services) if r == "ad_lockout_guard"]
        assert len(guard) >= 990  # the guard held
        binds = counting.binds
        assert login(services, "alice", ad.password("alice"), "203.0.113.77") is \
            LoginStatus.OK
        assert counting.binds == binds + 1
        assert admin.bad_password_count("alice") == 0  # her success reset it in AD
        assert int(admin.attribute("alice", "lockoutTime") or 0) == 0
        assert binds <= 1 + 2  # her first sign-in + at most T - 1 guesses ever reached AD
    finally:
        reset(directory, ad, "alice")


def test_her_own_success_mid_attack_does_not_ban_her_name(build: Build, ad: Any, admin: Any,
                                                          directory: LdapDirectory) -> None:
    """The outside test of issue 15 (promise 2), against Samba: a guess, her right password
    from a new address (AD resets badPwdCount), a second guess (a real bind: the second
    counted failure, the per-user ban), then 200 more guesses; her right password from new
    addresses still gets in, and AD never reaches the threshold."""
    services, counting = build(max_failures_per_user=2, max_failures_per_ip=5)
    threshold = int(ad.lockout_threshold)
    password = ad.password("user16")
    try:
        assert login(services, "user16", password, "10.16.0.1") is LoginStatus.OK
        assert login(services, "user16", "guess-a", "198.19.0.1") is LoginStatus.INVALID
        assert login(services, "user16", password, "203.0.113.30") is LoginStatus.OK
        assert login(services, "user16", "guess-b", "198.19.0.2") is LoginStatus.INVALID
        for n in range(200):
            assert login(services, "user16", f"guess-{n}", f"198.19.1.{n + 1}") is \
                LoginStatus.INVALID
        assert admin.bad_password_count("user16") < threshold
        for ip in ("203.0.113.31", "203.0.113.32"):
            assert login(services, "user16", password, ip) is LoginStatus.OK, ip
        assert admin.bad_password_count("user16") == 0
        assert int(admin.attribute("user16", "lockoutTime") or 0) == 0
    finally:
        reset(directory, ad, "user16")


def _login_reasons(services: Services) -> list[str]:
    with services.engine.connect() as conn:
        return list(conn.execute(select(audit_events.c.reason).where(
            audit_events.c.event == "login.password")).scalars())
