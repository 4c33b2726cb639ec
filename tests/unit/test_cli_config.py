"""Issue 15 item 3: every ``authgate`` command reads the file given with ``--config``, the
same way: before the subcommand, or ``$AUTHGATE_CONFIG``. ``serve`` hands it to the gunicorn
workers it starts (they run in another process, after ``--chdir``-like moves, so a relative
path is resolved first); ``demo``, which writes its own file, refuses one instead of ignoring
it."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
import yaml
from click.testing import CliRunner

from authgate.cli import main
from authgate.storage.engine import migrate
from tests.integration.harness import free_port, write_authgate_config

#: every command that loads the configuration (policy commands: issue 15 item 8)
COMMANDS = [["check-config"], ["db", "upgrade"], ["users", "list"], ["enrol", "issue", "bob"],
            ["keys", "rotate", "totp"], ["audit", "verify"], ["audit", "export"],
            ["audit", "public-key"], ["bans", "list"], ["directory", "check"],
            ["directory", "lookup", "bob"], ["serve"]]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_reads_the_file_given_with_config(tmp_path: Path,
                                                        command: list[str]) -> None:
    """A file with one wrong value: each command must report exactly that problem (it read
    the file), never start from defaults or another file."""
    config = tmp_path / "broken.yaml"
    config.write_text(yaml.safe_dump({"mode": "production",
                                      "server": {"public_url": "not a url"}}))
    result = CliRunner(env={"AUTHGATE_CONFIG": None}).invoke(
        main, ["--config", str(config), *command])
    assert result.exit_code in (1, 2), result.output
    assert "server.public_url" in result.output, result.output


def test_demo_refuses_a_config_it_would_ignore(tmp_path: Path) -> None:
    config = tmp_path / "authgate.yaml"
    config.write_text("mode: production\n")
    with socket.socket() as taken:  # were the file ignored, demo fails here, not serves
        taken.bind(("127.0.0.1", 0))
        result = CliRunner(env={"AUTHGATE_CONFIG": None}).invoke(
            main, ["--config", str(config), "demo", "--instance", str(tmp_path / "demo"),
                   "--gateway-port", str(taken.getsockname()[1])])
    assert result.exit_code == 2, result.output
    assert "demo writes its own configuration" in result.output
    assert not (tmp_path / "demo").exists()


def _wait_healthy(proc: subprocess.Popen[bytes], *ports: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    pending = set(ports)
    while pending and time.monotonic() < deadline:
        assert proc.poll() is None, f"authgate serve exited with {proc.returncode}"
        for port in list(pending):
            try:
                r = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
            except requests.RequestException:
                continue
            if r.status_code == 200 and r.text.strip() == "ok":
                pending.discard(port)
        time.sleep(0.1)
    assert not pending, f"no healthy gateway on {sorted(pending)} after {timeout}s"


def _stop(proc: subprocess.Popen[bytes]) -> int:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            return proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
    return proc.returncode


@pytest.mark.integration
def test_serve_passes_a_relative_config_to_its_workers(tmp_path: Path) -> None:
    """The attack of item 3: ``authgate --config authgate.yaml serve`` from the config's own
    directory, no ``$AUTHGATE_CONFIG``. Before the fix the workers loaded no file, failed to
    boot and the master gave up."""
    config = write_authgate_config(tmp_path, public_url="https://auth.localhost")
    migrate(f"sqlite:///{tmp_path / 'authgate.db'}")
    portal, verify = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k != "AUTHGATE_CONFIG"}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    authgate = shutil.which("authgate", path=str(Path(sys.executable).parent))
    assert authgate is not None
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen(
        [authgate, "--config", config.name, "serve", "--bind", f"127.0.0.1:{portal}",
         "--verify-bind", f"127.0.0.1:{verify}", "--workers", "1", "--verify-workers", "1"],
        cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_healthy(proc, portal, verify)
        # the verify pool serves forward auth only: the portal's pages are not there
        assert requests.get(f"http://127.0.0.1:{verify}/login", timeout=5).status_code == 404
        assert requests.get(f"http://127.0.0.1:{portal}/login", timeout=5).status_code == 200
    finally:
        code = _stop(proc)
        log.close()
    assert code == 0, (tmp_path / "serve.log").read_text(errors="replace")[-3000:]
