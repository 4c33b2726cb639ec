"""Fixtures for the regulation tests: the contract engines (SQLite and PostgreSQL), limits,
and ``FakeAd``, an in-memory directory that counts bad passwords exactly as AD does."""
from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import pytest

from authgate.core.clock import Clock
from authgate.core.errors import AccountLocked, AuthenticationFailed
from authgate.core.values import Identity
from authgate.directory.ldap_states import parse_login_name
from authgate.regulation.limits import Limits, ad_budget
from authgate.regulation.rules import PolicyRules
from authgate.storage.sql_regulation import SqlRegulationStore


def limits(**changes: object) -> Limits:
    values: dict[str, object] = dict(per_user=5, per_ip=20, window=timedelta(minutes=15),
                                     ban_time=timedelta(minutes=15), escalation=2.0,
                                     spray_users=10, factor_failures=5, ad=None)
    values.update(changes)
    return Limits(**values)  # type: ignore[arg-type]


def rules(**changes: object) -> PolicyRules:
    """The rules the store asks, over ``limits(**changes)``."""
    return PolicyRules(limits(**changes))


def ad(threshold: int = 3, minutes: int = 30) -> object:
    return ad_budget(threshold, timedelta(minutes=minutes))


@pytest.fixture
def store(engine) -> SqlRegulationStore:  # type: ignore[no-untyped-def]  # noqa: F811
    return SqlRegulationStore(engine)


class FakeAd:
    """badPwdCount as MS-SAMR 3.1.1.5 keeps it: a failure more than the observation window
    after the previous one restarts the count at 1; a success resets it; reaching the
    threshold locks. Counts every bind it receives (thread-safe)."""

    def __init__(self, clock: Clock, passwords: dict[str, str], *, threshold: int = 3,
                 window: timedelta = timedelta(minutes=30)) -> None:
        self.name = "fake-ad"
        self.max_bad = 0
        self._clock = clock
        self._passwords = passwords
        self.threshold, self.window = threshold, window
        self.bad: dict[str, int] = {}
        self._bad_time: dict[str, object] = {}
        self.locked: set[str] = set()
        self.binds = 0
        self._changes: dict[str, int] = {}
        self._lock = threading.Lock()

    def domain_lockout_policy(self) -> tuple[int, timedelta]:
        return self.threshold, self.window

    def canonical_login_name(self, name: str) -> str:
        """As ``LdapDirectory``: alice, alice@city.test and CITY\\alice are one account."""
        return parse_login_name(name, upn_suffix="city.test",
                                netbios_domain="CITY") or name.strip().lower()

    def authenticate(self, *, username: str, password: str) -> Identity:
        name = username.split("@")[0].split("\\")[-1].lower()
        with self._lock:
            if name not in self._passwords:
                raise AuthenticationFailed("unknown_user")
            self.binds += 1
            if name in self.locked:
                raise AccountLocked("data 775")
            if password != self._passwords[name]:
                now = self._clock.now()
                last = self._bad_time.get(name)
                count = self.bad.get(name, 0) if last and now - last <= self.window else 0
                self.bad[name], self._bad_time[name] = count + 1, now
                self.max_bad = max(self.max_bad, count + 1)
                if count + 1 >= self.threshold:
                    self.locked.add(name)
                raise AuthenticationFailed("invalid_credentials")
            self.bad[name] = 0
        return Identity(username=name, source="fake-ad", password_set_at=self.stamp(name))

    def lookup(self, username: str) -> Identity | None:
        """As AD's ``lookup``: None for an unknown or locked account; ``password_set_at``
        stands for ``pwdLastSet`` (moved by ``set_password``)."""
        name = self.canonical_login_name(username)
        if name not in self._passwords or name in self.locked:
            return None
        return Identity(username=name, password_set_at=self.stamp(name))

    def stamp(self, name: str) -> str:
        return str(self._changes.get(name, 0))

    def change_password(self, *, username: str, old_password: str, new_password: str) -> None:
        """The user's own change (AD's PasswordChanger role): the old password must bind."""
        name = self.authenticate(username=username, password=old_password).username
        self.set_password(name, new_password)

    def set_password(self, name: str, password: str) -> None:
        """An administrator's reset in AD: a new password, pwdLastSet moves."""
        with self._lock:
            self._passwords[name] = password
            self._changes[name] = self._changes.get(name, 0) + 1

    def check(self) -> None:
        return None


def policy_dir(tmp: Path, **regulation: object) -> Path:
    """A copy of the shipped policies with some regulation thresholds changed."""
    import re
    import shutil

    from tests.conftest import TEST_POLICIES

    target = tmp / "policies"
    shutil.copytree(TEST_POLICIES, target)
    globals_file = target / "00-globals.yaml"
    text = globals_file.read_text(encoding="utf-8")
    for key, value in regulation.items():
        text, n = re.subn(rf"(?m)^(  {key}:) \S+", rf"\g<1> {value}", text)
        assert n == 1, key
    globals_file.write_text(text, encoding="utf-8")
    return target
