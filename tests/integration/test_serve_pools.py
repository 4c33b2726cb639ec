"""Issue 15 item 7: ``authgate serve`` as deployed keeps forward auth first. The verify pool
runs at niceness 0 and the portal pool (sign-in, where a login flood lands) at 19, the
default chosen by benchmarks/availability.py (docs/deployment.md, "Two pools"): under an
open-loop flood of 150 wrong passwords a second, ``/verify`` kept 0.84x its quiet req/s at
19 against 0.71x at 5."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import requests

from authgate.storage.engine import migrate
from tests.integration.harness import (
    VENV_BIN,
    free_port,
    group_stats,
    start_authgate,
    stop,
    write_authgate_config,
)

pytestmark = pytest.mark.integration


def _pools(pgid: int) -> dict[str, list[int]]:
    """Niceness of each gunicorn worker and master, by pool name."""
    found: dict[str, list[int]] = {"authgate-portal": [], "authgate-verify": []}
    for pid, fields in group_stats(pgid).items():
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        for pool, nices in found.items():
            if pool.encode() in command:
                nices.append(int(fields[16]))  # /proc/PID/stat field 19: nice
    return found


def test_the_portal_runs_below_forward_auth_by_default(tmp_path: Path) -> None:
    config = write_authgate_config(tmp_path, public_url="https://auth.localhost",
                                   log_level="WARNING")
    migrate(f"sqlite:///{tmp_path / 'authgate.db'}")
    portal, verify = free_port(), free_port()
    gateway = start_authgate({"AUTHGATE_CONFIG": str(config)}, portal_port=portal,
                             verify_port=verify, run_dir=tmp_path, portal_nice=None)
    try:
        pools = _pools(gateway.popen.pid)
        assert len(pools["authgate-portal"]) >= 3 and len(pools["authgate-verify"]) >= 3, pools
        assert set(pools["authgate-portal"]) == {19}, pools
        assert set(pools["authgate-verify"]) == {0}, pools
        for port in (portal, verify):  # both still serve
            assert requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).text.strip() == "ok"
    finally:
        stop(gateway)


def test_serve_refuses_a_database_without_the_schema(tmp_path: Path) -> None:
    """Found by the outside test of issue 15: on a database nobody ran ``authgate db
    upgrade`` on, ``serve`` started, and every sign-in and ``/verify`` failed with a storage
    error. It now refuses to start, exit 2, and says what to run; after the upgrade it
    starts."""
    config = write_authgate_config(tmp_path, public_url="https://auth.localhost",
                                   log_level="WARNING")
    env = {**os.environ, "AUTHGATE_CONFIG": str(config)}
    done = subprocess.run([str(VENV_BIN / "authgate"), "serve", "--bind",
                           f"127.0.0.1:{free_port()}", "--verify-bind",
                           f"127.0.0.1:{free_port()}"], env=env, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 2, done.stderr
    assert "run `authgate db upgrade` first" in done.stderr
    assert "Traceback" not in done.stderr
