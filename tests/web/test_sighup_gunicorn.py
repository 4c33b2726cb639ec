"""Issue 14 item 5, under a real gunicorn worker: SIGHUP with a broken policy file keeps the
worker alive and serving the last good set (ERROR log, ``policy.reload`` audited)."""
from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path

import pytest
import requests
from sqlalchemy import select

from authgate.directory.file import FileDirectory
from authgate.storage.engine import make_engine, migrate
from authgate.storage.tables import audit_events
from tests.audit.test_durability import _wait_for, _workers
from tests.conftest import ALICE_PASSWORD, FAST_HASHER, TEST_POLICIES, verify_headers
from tests.integration.harness import free_port, start_gunicorn, stop, write_authgate_config

pytestmark = pytest.mark.integration


def test_sighup_to_a_worker_with_a_broken_policy_keeps_serving(tmp_path: Path) -> None:
    policies = tmp_path / "policies"
    shutil.copytree(TEST_POLICIES, policies)
    users = tmp_path / "users.yaml"
    FileDirectory(users, hasher=FAST_HASHER).add_user("alice", ALICE_PASSWORD)
    url = f"sqlite:///{tmp_path / 'authgate.db'}"
    config = write_authgate_config(tmp_path, public_url="https://auth.localhost",
                                   storage_url=url, users_file=users,
                                   policy={"path": str(policies), "require_approval": False})
    migrate(url)
    port = free_port()
    gunicorn = start_gunicorn("wsgi:app", port, {"AUTHGATE_CONFIG": str(config)}, workers=1,
                              run_dir=tmp_path, name="authgate")
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_for(lambda: len(_workers(gunicorn.popen.pid)) == 1, 10, "one worker")
        [worker] = _workers(gunicorn.popen.pid)

        def ask(path: str) -> int:
            return requests.get(f"{base}/verify", headers=verify_headers(path),
                                timeout=5).status_code

        assert (ask("/public/x"), ask("/forbidden/x")) == (200, 403)
        (policies / "50-broken.yaml").write_text("version: 1\nrules: [{id: x, levle: mfa}]\n")
        os.kill(worker, signal.SIGHUP)
        time.sleep(1.2)  # past the one-second look interval
        assert (ask("/public/x"), ask("/forbidden/x")) == (200, 403)
        assert _workers(gunicorn.popen.pid) == {worker}, "the worker died on SIGHUP"
        assert gunicorn.running
        engine = make_engine(url)
        with engine.connect() as conn:
            rows = conn.execute(select(audit_events.c.outcome, audit_events.c.reason).where(
                audit_events.c.event == "policy.reload")).all()
        engine.dispose()
        assert ("deny", "policy_rejected") in [tuple(r) for r in rows]
        assert "policy reload rejected" in gunicorn.log_text()
    finally:
        stop(gunicorn)
