"""The service account against the real Samba DC (issue 15 items 1, 2, 11).

A mistyped service password must never lock ``svc-authgate`` (the domain locks at 3): after
one refused service bind authgate stops binding with that password, in every worker and
every instance sharing the database, until the password file changes or an operator resets
the circuit. ``/readyz``, ``check-config`` and ``directory check`` say what AD answered.
"""
from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from authgate.cli import main
from authgate.storage.engine import migrate
from tests.ad.samba import DcFacts
from tests.ad.web_helpers import WebUser, ad_app, audit, ldap_config
from tests.conftest import TEST_ENCRYPTION_KEY, TEST_POLICIES, TEST_SECRET

pytestmark = pytest.mark.integration

WRONG = "Not-The-Service-Password-1!"
SVC = "svc-authgate"


@pytest.fixture
def svc_guard(admin: Any) -> Iterator[Any]:
    """Whatever the code under test does, the shared service account is unlocked after."""
    yield admin
    admin.unlock(SVC)


def _locked(admin: Any) -> bool:
    value = admin.attribute(SVC, "lockoutTime")
    if isinstance(value, datetime):
        return value.year > 1601  # 0 reads back as the FILETIME epoch
    return int(value or 0) != 0


def _password_file(tmp_path: Path, password: str) -> Path:
    path = tmp_path / "svc.password"
    path.write_text(password, encoding="utf-8")
    path.chmod(0o600)
    return path


def test_wrong_service_password_never_locks_the_service_account(
        tmp_path: Path, ad: DcFacts, clock: Any, svc_guard: Any) -> None:
    """Three instances on one database, 30 readiness probes and 9 logins with a wrong service
    password: AD sees at most one failed service bind; fixing the file heals it live."""
    secret = _password_file(tmp_path, WRONG)
    apps = [ad_app(tmp_path, ad, clock, bind_password_file=str(secret)) for _ in range(3)]
    for n, (app, _services) in enumerate(apps):
        client = app.test_client()
        for _ in range(10):
            ready = client.get("/readyz")
            assert ready.status_code == 503
        for i in range(3):
            r = WebUser(app, f"10.150.{n}.{i}").login("alice", ad.password("alice"))
            assert r.status_code >= 400
    assert svc_guard.bad_password_count(SVC) <= 1
    assert not _locked(svc_guard)
    body = apps[0][0].test_client().get("/readyz").get_json()
    assert body["checks"]["directory"] == "service_bind_refused"
    assert "52e" in body["checks"]["directory_detail"]
    reasons = {row.reason for row in audit(apps[0][1], "directory.service_bind")}
    assert "service_bind_refused" in reasons

    secret.write_text(ad.bind_password, encoding="utf-8")  # the operator fixes the file
    app, _services = apps[1]
    assert app.test_client().get("/readyz").status_code == 200
    r = WebUser(app, "10.150.9.1").login("alice", ad.password("alice"))
    assert r.status_code == 303, r.get_data(as_text=True)
    assert svc_guard.bad_password_count(SVC) == 0  # the good bind reset AD's count
    for _app, services in apps:
        services.directory.close()


def _config_file(tmp_path: Path, ad: DcFacts, **ldap: Any) -> Path:
    data = {
        "mode": "production",
        "server": {"public_url": "https://localhost:9091", "protected_domains": ["localhost"]},
        "storage": {"url": f"sqlite:///{tmp_path / 'cli.db'}"},
        "directory": {"backend": "ldap", "ldap": ldap_config(ad, **ldap)},
        "policy": {"path": str(TEST_POLICIES), "require_approval": False},
        "secrets": {"session_key": TEST_SECRET, "audit_key": TEST_SECRET,
                    "encryption_keys": [TEST_ENCRYPTION_KEY]},
    }
    path = tmp_path / "authgate.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    migrate(data["storage"]["url"])  # type: ignore[index]
    return path


def test_check_config_and_directory_check_spend_one_bad_password(
        tmp_path: Path, ad: DcFacts, svc_guard: Any) -> None:
    """check-config fails on a wrong service password and says what AD answered; repeating
    it and ``directory check`` add no AD failure; reset-service-bind is audited."""
    secret = _password_file(tmp_path, WRONG)
    config = _config_file(tmp_path, ad, bind_password_file=str(secret))
    runner = CliRunner()
    before = svc_guard.bad_password_count(SVC)
    first = runner.invoke(main, ["--config", str(config), "check-config"])
    assert first.exit_code == 1, first.output
    assert "configuration OK" not in first.output
    assert "52e" in first.output and "service" in first.output
    for args in (["check-config"], ["directory", "check"], ["directory", "check"]):
        again = runner.invoke(main, ["--config", str(config), *args])
        assert again.exit_code == 1, again.output
        assert "52e" in again.output
    assert svc_guard.bad_password_count(SVC) - before <= 1
    assert not _locked(svc_guard)

    reset = runner.invoke(main, ["--config", str(config), "directory", "reset-service-bind"])
    assert reset.exit_code == 0, reset.output
    secret.write_text(ad.bind_password, encoding="utf-8")
    ok = runner.invoke(main, ["--config", str(config), "directory", "check"])
    assert ok.exit_code == 0, ok.output
    assert "service bind accepted" in ok.output
    good = runner.invoke(main, ["--config", str(config), "check-config"])
    assert good.exit_code == 0, good.output
    assert "configuration OK" in good.output


def test_old_password_right_after_a_change_on_this_dc(
        directory: Any, ad: DcFacts, admin: Any) -> None:
    """What docs/active-directory.md states, measured: on this Samba 4.17 DC the old
    password still succeeds in a simple bind right after a change, alongside the new one,
    and adds nothing to badPwdCount. (Issue 15 saw a DC refuse it and count it; the doc
    says authgate relies on neither.)"""
    user, old, new = "user16", ad.password("user16"), "Changed-Pass-2026!x"
    before = admin.bad_password_count(user)
    directory.change_password(username=user, old_password=old, new_password=new)
    try:
        assert directory.authenticate(username=user, password=old).username == user
        assert directory.authenticate(username=user, password=new).username == user
        assert admin.bad_password_count(user) == before == 0
    finally:
        _reset_password(admin, user, old)


def _reset_password(admin: Any, sam: str, password: str) -> None:
    """An administrative reset (password history does not apply to it)."""
    conn = admin._conn()
    try:
        assert conn.extend.microsoft.modify_password(admin._dn(conn, sam), password)
    finally:
        conn.unbind()
