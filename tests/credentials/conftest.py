"""Helpers for second-factor flows through the real pages (Flask test client)."""
from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import pyotp
import pytest
from flask import Flask
from sqlalchemy import Engine, event

from authgate.composition.root import Services, build_services
from authgate.core.clock import FixedClock
from authgate.core.values import RequestMeta
from authgate.storage.engine import migrate
from authgate.storage.fastpath import connections_for
from authgate.web import create_app
from tests.conftest import make_settings
from tests.credentials.races import Races

MFA_URL = "http://localhost:8080/mfa/report?x=1&y=2"


class MfaActions:
    def __init__(self, client, auth, services, clock) -> None:  # type: ignore[no-untyped-def]
        self.client, self.auth, self.services, self.clock = client, auth, services, clock

    def issue_code(self, username: str = "alice", ttl: timedelta = timedelta(hours=24)) -> str:
        return self.services.mfa.enrolment.issue(username=username, issued_by="test-admin",
                                                 ttl=ttl, meta=RequestMeta()).code

    def csrf(self, html: str) -> str:
        match = re.search(r'(?:name="csrf_token" value|data-csrf)="([^"]+)"', html)
        assert match, html[:500]
        return match.group(1)

    def post(self, path: str, html: str, **data: str):  # type: ignore[no-untyped-def]
        return self.client.post(path, data={"csrf_token": self.csrf(html), **data})

    def login_to(self, rd: str = MFA_URL, username: str = "alice", password: str | None = None):  # type: ignore[no-untyped-def]
        kwargs = {"username": username, "rd": rd}
        if password is not None:
            kwargs["password"] = password
        r = self.auth.login(**kwargs)
        assert r.status_code == 303, r.get_data(as_text=True)[:300]
        return self.client.get(r.headers["Location"])

    def enrol_totp(self, code: str, rd: str = MFA_URL) -> str:
        """Log in, redeem the code, set up TOTP; returns the base32 secret."""
        r = self.login_to(rd)
        assert r.status_code == 303 and r.headers["Location"].startswith("/enrol")
        page = self.client.get(r.headers["Location"]).get_data(as_text=True)
        r = self.post("/enrol/code", page, code=code, rd=rd)
        assert r.status_code == 303, r.get_data(as_text=True)[:300]
        page = self.client.get(r.headers["Location"]).get_data(as_text=True)
        assert "Choose a sign-in device" in page
        page = self.post("/enrol/totp/start", page, name="Phone", rd=rd).get_data(as_text=True)
        secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', page).group(1)
        cred = re.search(r'name="credential_id" value="([0-9a-f]+)"', page).group(1)
        r = self.post("/enrol/totp/confirm", page, credential_id=cred,
                      code=self.totp(secret), rd=rd)
        assert r.status_code == 303, r.get_data(as_text=True)[:300]
        return secret

    def totp(self, secret: str, steps: int = 0) -> str:
        return pyotp.TOTP(secret).at(self.clock.now() + timedelta(seconds=30 * steps))

    def verify(self, url: str = MFA_URL):  # type: ignore[no-untyped-def]
        from urllib.parse import urlsplit

        parts = urlsplit(url)
        return self.client.get("/verify", headers={
            "X-Original-URI": parts.path + (f"?{parts.query}" if parts.query else ""),
            "X-Original-Method": "GET", "X-Forwarded-Proto": parts.scheme,
            "X-Forwarded-Host": parts.netloc})

    def factor_page(self, rd: str = MFA_URL):  # type: ignore[no-untyped-def]
        return self.client.get("/login/next?rd=" + quote(rd, safe=""))


@pytest.fixture
def mfa(client, auth, services, clock) -> MfaActions:  # type: ignore[no-untyped-def]
    return MfaActions(client, auth, services, clock)


@pytest.fixture
def step_services(engine: Engine, tmp_path: Path, users_file: Path,
                  clock: FixedClock) -> Iterator[Services]:
    """Services on the contract engine's database (SQLite, then PostgreSQL): the login
    steps' one-transaction tests (issue 20 item 1)."""
    settings = make_settings(tmp_path, users_file, storage={
        "url": engine.url.render_as_string(hide_password=False)})
    built = build_services(settings, clock=clock)
    yield built
    built.audit.close()
    connections_for(built.engine).discard()  # detached from the pool: dispose leaves it
    built.engine.dispose()


@pytest.fixture
def races(step_services: Services, tmp_path: Path, users_file: Path) -> Races:
    """Login steps raced by processes on ``step_services``' database (both databases)."""
    return Races(step_services, tmp_path, users_file)


@pytest.fixture
def passkey_app(tmp_path: Path, users_file: Path, clock: FixedClock
                ) -> Iterator[tuple[Flask, Services]]:
    """The portal with passkey sign-in on (SQLite)."""
    settings = make_settings(tmp_path, users_file, webauthn={"passkey_sign_in": True})
    migrate(settings.storage.url)
    built = build_services(settings, clock=clock)
    yield create_app({"services": built, "TESTING": True}), built
    built.audit.close()
    built.engine.dispose()


@contextmanager
def audit_append_fails(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Inside: a login step's last statement, the sealed audit append, fails with a real
    database error (a table that does not exist); after it, appends work again."""
    from authgate.storage.sql_login_step import SqlStepWrites

    real_append = SqlStepWrites.append_audit

    def failing(self, record):  # type: ignore[no-untyped-def]
        self.cur.execute("INSERT INTO no_such_table VALUES (1)")

    monkeypatch.setattr(SqlStepWrites, "append_audit", failing)
    try:
        yield
    finally:
        monkeypatch.setattr(SqlStepWrites, "append_audit", real_append)


@contextmanager
def sqlite_statements(engine: Engine) -> Iterator[list[tuple[int, str]]]:
    """Inside: every statement SQLite runs on any connection ``engine`` opens, with the
    connection's id (SQLite's own trace, so nothing the code under test sends is missed);
    the pooled connections are closed first, so each one in use is a new, traced one."""
    statements: list[tuple[int, str]] = []
    connections_for(engine).discard()
    engine.pool.dispose()

    def traced(dbapi_conn, _record):  # type: ignore[no-untyped-def]
        dbapi_conn.set_trace_callback(lambda sql: statements.append((id(dbapi_conn), sql)))

    event.listen(engine, "connect", traced)
    try:
        yield statements
    finally:
        event.remove(engine, "connect", traced)


def assert_transactions(statements: list[tuple[int, str]], count: int = 1,
                        writes_at_least: int = 1) -> list[tuple[int, int]]:
    """Exactly ``count`` BEGINs and COMMITs, every write between a BEGIN and its COMMIT,
    all on one connection; the (BEGIN, COMMIT) positions in ``statements``."""
    verbs = [(conn, sql.split()[0].upper()) for conn, sql in statements]
    begins = [i for i, (_, v) in enumerate(verbs) if v == "BEGIN"]
    commits = [i for i, (_, v) in enumerate(verbs) if v == "COMMIT"]
    assert len(begins) == count and len(commits) == count
    spans = list(zip(begins, commits, strict=True))
    writes = [i for i, (_, v) in enumerate(verbs) if v in ("INSERT", "UPDATE", "DELETE")]
    assert len(writes) >= writes_at_least
    assert all(any(b < i < c for b, c in spans) for i in writes)
    assert len({verbs[i][0] for i in (*begins, *writes, *commits)}) == 1  # one connection
    return spans
