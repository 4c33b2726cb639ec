"""Issue 18 item 7: every command reads ``$AUTHGATE_CONFIG`` exactly as it reads ``--config``
before its name, and every relative path written in the file (key files, CA file, policy
directory, users file, database file, signing and identity keys, witness) names a file
beside the configuration file, whatever directory the command runs from."""
from __future__ import annotations

import base64
import secrets
import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from authgate.cli import main
from authgate.config import load_settings
from tests.integration.harness import TEST_POLICIES
from tests.unit.test_cli_config import COMMANDS


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_reads_the_file_named_by_authgate_config(tmp_path: Path,
                                                               command: list[str]) -> None:
    config = tmp_path / "broken.yaml"
    config.write_text(yaml.safe_dump({"mode": "production",
                                      "server": {"public_url": "not a url"}}))
    result = CliRunner(env={"AUTHGATE_CONFIG": str(config)}).invoke(main, command)
    assert result.exit_code in (1, 2), result.output
    assert "server.public_url" in result.output, result.output


def _config_with_relative_paths(folder: Path) -> Path:
    folder.mkdir()
    shutil.copytree(TEST_POLICIES, folder / "policies")
    for name in ("session_key", "audit_key"):
        (folder / name).write_text(secrets.token_urlsafe(48) + "\n")
    (folder / "encryption_keys").write_text(
        "k1:" + base64.b64encode(secrets.token_bytes(32)).decode() + "\n")
    config = {
        "mode": "production",
        "server": {"public_url": "https://auth.city.test"},
        "storage": {"url": "sqlite:///state/authgate.db"},
        "directory": {"backend": "file", "file": {"path": "users.yaml"}},
        "policy": {"path": "policies", "require_approval": False},
        "secrets": {"session_key_file": "session_key", "audit_key_file": "audit_key",
                    "encryption_keys_file": "encryption_keys"},
        "audit": {"signing_key_file": "audit-signing.pem", "witness": "witness",
                  "sinks": [{"type": "jsonl", "path": "audit.jsonl"}]},
    }
    (folder / "state").mkdir()
    (folder / "witness").mkdir()
    path = folder / "authgate.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_relative_paths_in_the_file_are_beside_it_from_any_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = _config_with_relative_paths(tmp_path / "etc")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    runner = CliRunner(env={"AUTHGATE_CONFIG": None})
    relative = str(Path("..") / "etc" / "authgate.yaml")  # a relative --config, too
    keygen = runner.invoke(main, ["--config", relative, "audit", "keygen",
                                  str(tmp_path / "etc" / "audit-signing.pem")])
    assert keygen.exit_code == 0, keygen.output
    for command in (["db", "upgrade"], ["check-config"], ["policy", "test"]):
        result = runner.invoke(main, ["--config", relative, *command])
        assert result.exit_code == 0, (command, result.output)
    added = runner.invoke(main, ["--config", relative, "users", "add", "bob",
                                 "--password-stdin"], input="a-long-password-for-bob\n")
    assert added.exit_code == 0, added.output
    assert (tmp_path / "etc" / "state" / "authgate.db").is_file()
    assert (tmp_path / "etc" / "users.yaml").is_file()
    assert list(elsewhere.iterdir()) == [], "nothing may be written in the working directory"
    settings = load_settings(config)
    etc = str(tmp_path / "etc")
    assert settings.policy.path == f"{etc}/policies"
    assert settings.audit.signing_key_file == f"{etc}/audit-signing.pem"
    assert settings.audit.sinks[0].path == f"{etc}/audit.jsonl"
    assert settings.audit.witness == f"{etc}/witness"
    assert settings.secrets.session_key is not None
    assert settings.secrets.session_key.source == f"{etc}/session_key"


def test_environment_overrides_and_defaults_stay_relative_to_the_working_directory(
        tmp_path: Path) -> None:
    config = _config_with_relative_paths(tmp_path / "etc")
    (tmp_path / "etc" / "audit-signing.pem").touch()
    settings = load_settings(config, environ={"AUTHGATE_DIRECTORY__FILE__PATH": "bg.yaml"})
    assert settings.directory.file.path == "bg.yaml"
    assert settings.directory.break_glass_file == ""
