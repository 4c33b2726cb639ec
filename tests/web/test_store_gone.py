"""Issue 14 item 5: the SQLite file deleted or renamed under a running gateway. Connections
would go on working on the unlinked file; instead readiness fails (it proves a write and a
read) and /verify denies, on a bypass path too, signed in or not: never a 200."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from authgate.core.values import Level
from tests.conftest import session_cookie, verify_headers


def _database(settings) -> Path:  # type: ignore[no-untyped-def]
    return Path(settings.storage.url.removeprefix("sqlite:///"))


@pytest.mark.parametrize("how", ["delete", "rename"])
def test_database_gone_means_not_ready_and_deny(client, services, settings, how: str) -> None:  # type: ignore[no-untyped-def]
    session_cookie(client, services, "alice", Level.MFA)
    assert client.get("/readyz").status_code == 200
    assert client.get("/verify", headers=verify_headers("/app/x")).status_code == 200
    assert client.get("/verify", headers=verify_headers("/public/x")).status_code == 200
    db = _database(settings)
    for suffix in ("", "-wal", "-shm"):
        path = Path(f"{db}{suffix}")
        if path.exists():
            os.remove(path) if how == "delete" else path.rename(f"{path}.moved")
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.get_json()["checks"]["storage"] != "ok"
    for path in ("/app/x", "/public/x", "/mfa/x"):
        status = client.get("/verify", headers=verify_headers(path)).status_code
        assert status in (401, 403), (path, status)
    assert not db.exists()  # and no empty database was created in its place


def test_readiness_proves_a_write(client, services, settings) -> None:  # type: ignore[no-untyped-def]
    """A database that can be read but not written is not ready."""
    with services.engine.begin() as conn:  # sessions become read-only for everyone
        conn.exec_driver_sql(
            "CREATE TRIGGER no_writes BEFORE INSERT ON sessions "
            "BEGIN SELECT RAISE(ABORT, 'read-only'); END")
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.get_json()["checks"]["storage"] != "ok"
    with services.engine.begin() as conn:
        conn.exec_driver_sql("DROP TRIGGER no_writes")
    assert client.get("/readyz").status_code == 200
