"""Fixtures that build on each other, as in Flask's tutorial:
settings → services → app → client → auth (an AuthActions helper)."""
from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from authgate.audit.log import CHECKPOINT_TIMER
from authgate.composition.root import Services, build_services
from authgate.config import Settings, settings_from_mapping
from authgate.core.clock import FixedClock
from authgate.directory.file import FileDirectory
from authgate.storage.engine import migrate
from tests.fixtures.net import csrf_token

pytest_plugins = ["tests.fixtures.databases", "tests.fixtures.samba_session"]

ROOT = Path(__file__).resolve().parent.parent
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
ALICE_PASSWORD = "correct horse battery staple"
TEST_SECRET = "t" * 40
#: The policy set the web, audit and integration tests run against: a copy of the shipped
#: baseline plus its localhost demo file, so the baseline in policies/ can change (and
#: production deployments can delete the demo file) without breaking these tests.
TEST_POLICIES = ROOT / "tests" / "policies"
TEST_ENCRYPTION_KEY = "k1:QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE="  # 32 bytes of "A"



@pytest.fixture(autouse=True)
def no_checkpoint_timer_outlives_its_test() -> Iterator[None]:
    """An audit log arms a timer that signs a checkpoint ``checkpoint_interval`` (5 minutes)
    after its last record. A test that leaves one behind has it fire minutes later into
    whatever database then sits at the same URL: on the shared PostgreSQL cluster, the
    next test's fresh tables (a stray ``audit.checkpoint`` dated by the old test's clock
    broke ``test_audit_append_and_query[postgres]``). Every test starts without one."""
    assert not _checkpoint_timers(), "a checkpoint timer outlived an earlier test"
    yield
    for timer in _checkpoint_timers():
        timer.cancel()
        timer.join(5)


def _checkpoint_timers() -> list[threading.Timer]:
    """Armed ones: a cancelled timer's thread may take a moment to end, and never fires."""
    return [t for t in threading.enumerate()
            if isinstance(t, threading.Timer) and t.name == CHECKPOINT_TIMER and t.is_alive()
            and not t.finished.is_set()]


@pytest.fixture
def users_file(tmp_path: Path) -> Path:
    path = tmp_path / "users.yaml"
    directory = FileDirectory(path, hasher=FAST_HASHER)
    directory.add_user("alice", ALICE_PASSWORD, display_name="Alice Liddell",
                       email="alice@city.test", groups=["City-Staff", "IT-Dept"])
    directory.add_user("bob", "bob's long password", display_name="Bob", groups=["City-Staff"])
    directory.add_user("carol", "carol's long password", display_name="Carol")
    directory.set_disabled("carol", True)
    directory.add_user("adam", "adam's long password", display_name="Adam Admin",
                       groups=["City-Staff", "authgate-admins"])
    directory.add_user("audrey", "audrey's long password", display_name="Audrey Auditor",
                       groups=["City-Staff", "authgate-auditors"])
    return path


def session_cookie(client, services, username: str, level) -> str:  # type: ignore[no-untyped-def]
    """Sign a user in directly at ``level`` (as if the factor steps had run) for console
    tests; the factor flows themselves are tested through the pages."""
    issued = services.sessions.start(services.directory.lookup(username), level=level,
                                     client_ip="127.0.0.1", user_agent="test")
    client.set_cookie("__Host-authgate_session", issued.token, domain="localhost")
    return issued.token


def pending_change(client, services, username: str) -> None:  # type: ignore[no-untyped-def]
    """The marker the password step leaves when the directory says the password must change
    (the file directory has no such state): only then may ``/password/change`` be used."""
    from authgate.web.password_change import PENDING, PENDING_FOR

    with client.session_transaction() as page_session:
        page_session[PENDING] = {"user": username.lower(),
                                 "until": (services.clock.now() + PENDING_FOR).isoformat()}


def write_cli_config(path: Path, settings: Settings, *, policies: Path,
                     storage_url: str | None = None, **policy: object) -> Path:
    """The configuration file a CLI test passes with ``--config``: ``settings``' storage and
    users file (or ``storage_url``), the test secrets, and ``policies`` as policy.path."""
    import yaml

    path.write_text(yaml.safe_dump({
        "mode": "production",
        "server": {"public_url": "https://localhost:9091", "protected_domains": ["localhost"],
                   "allow_http_localhost": True},
        "storage": {"url": storage_url or settings.storage.url},
        "directory": {"backend": "file", "file": {"path": str(settings.directory.file.path)}},
        "policy": {"path": str(policies), **policy},
        "secrets": {"session_key": TEST_SECRET, "audit_key": TEST_SECRET,
                    "encryption_keys": [TEST_ENCRYPTION_KEY]}}))
    return path


def make_settings(tmp_path: Path, users_file: Path, **overrides: object) -> Settings:
    data: dict[str, object] = {
        "mode": "production",
        "server": {"public_url": "https://localhost:9091", "protected_domains": ["localhost",
                   "*.city.test"], "allow_http_localhost": True},
        "storage": {"url": f"sqlite:///{tmp_path / 'authgate.db'}"},
        "directory": {"backend": "file", "file": {"path": str(users_file)}},
        "policy": {"path": str(TEST_POLICIES), "require_approval": False},
        "secrets": {"session_key": TEST_SECRET, "audit_key": TEST_SECRET,
                    "encryption_keys": [TEST_ENCRYPTION_KEY]},
    }
    for key, value in overrides.items():
        section = data.setdefault(key, {})
        if isinstance(section, dict) and isinstance(value, dict):
            section.update(value)
        else:
            data[key] = value
    return settings_from_mapping(data)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture
def settings(tmp_path: Path, users_file: Path) -> Settings:
    return make_settings(tmp_path, users_file)


@pytest.fixture
def services(settings: Settings, clock: FixedClock) -> Iterator[Services]:
    """Closed after the test: its audit log's checkpoint timer, witness and sink threads
    would otherwise outlive it and write to SQLite at any moment of a later test, and a
    thread inside SQLite when a later test forks (``audit verify/export --jobs``) leaves
    the child a locked SQLite mutex: the hang seen twice today."""
    migrate(settings.storage.url)
    built = build_services(settings, clock=clock)
    yield built
    built.audit.close()
    built.engine.dispose()


@pytest.fixture
def app(services: Services):  # type: ignore[no-untyped-def]
    from authgate.web import create_app

    return create_app({"services": services, "TESTING": True})


@pytest.fixture
def client(app):  # type: ignore[no-untyped-def]
    return app.test_client()


class AuthActions:
    """Log in and out through the real pages, CSRF token included."""

    def __init__(self, client) -> None:  # type: ignore[no-untyped-def]
        self._client = client

    def csrf(self, path: str = "/login") -> str:
        response = self._client.get(path)
        if response.status_code in (302, 303):  # signed in already: any form page will do
            response = self._client.get("/logout")
        page = response.get_data(as_text=True)
        return csrf_token(page)

    def login(self, username: str = "alice", password: str = ALICE_PASSWORD, rd: str = ""):  # type: ignore[no-untyped-def]
        return self._client.post("/login", data={"csrf_token": self.csrf(), "username": username,
                                                 "password": password, "rd": rd})

    def logout(self):  # type: ignore[no-untyped-def]
        return self._client.post("/logout", data={"csrf_token": self.csrf("/logout")})


@pytest.fixture
def auth(client) -> AuthActions:  # type: ignore[no-untyped-def]
    return AuthActions(client)


def verify_headers(uri: str = "/app/page", host: str = "localhost", proto: str = "http",
                   **extra: str) -> dict[str, str]:
    headers = {"X-Original-URI": uri, "X-Original-Method": "GET", "X-Forwarded-Proto": proto,
               "X-Forwarded-Host": host}
    headers.update(extra)
    return headers
