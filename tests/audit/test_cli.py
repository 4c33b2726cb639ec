"""``authgate audit``: verify exits 0 intact and 1 naming the damage; export, purge, keygen."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from sqlalchemy import create_engine, text

from authgate.cli import Context
from authgate.cli.audit import audit_group
from authgate.composition.audit import build_audit_log
from authgate.config import load_settings
from authgate.core.clock import SystemClock
from authgate.storage.engine import make_engine, migrate
from tests.audit.conftest import event
from tests.conftest import TEST_ENCRYPTION_KEY, TEST_POLICIES, TEST_SECRET


@pytest.fixture
def config(tmp_path: Path, users_file: Path) -> Path:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    path = tmp_path / "authgate.yaml"
    path.write_text(yaml.safe_dump({
        "server": {"public_url": "https://auth.city.test"},
        "storage": {"url": url},
        "directory": {"file": {"path": str(users_file)}},
        "policy": {"path": str(TEST_POLICIES), "require_approval": False},
        "secrets": {"session_key": TEST_SECRET, "audit_key": "c" * 40,
                    "encryption_keys": [TEST_ENCRYPTION_KEY]},
    }))
    migrate(url)
    settings = load_settings(path)
    engine = make_engine(url)
    log = build_audit_log(settings, engine, SystemClock(), close_on_exit=False)
    for n in range(30):
        log.record(event(n, username="=evil" if n == 3 else f"user{n % 3}"))
    log.checkpoint()
    log.close()
    engine.dispose()
    return path


def run(config: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(audit_group, list(args), obj=Context(str(config)))
    return result.exit_code, result.output


def test_verify_intact_then_damaged(config: Path) -> None:
    code, out = run(config, "verify", "--jobs", "1")
    assert code == 0 and "intact: 32 records" in out, out
    url = load_settings(config).storage.url
    with create_engine(url).begin() as conn:
        conn.execute(text("UPDATE audit_events SET username = 'x' WHERE id = 5"))
    code, out = run(config, "verify")
    assert code == 1 and "altered: record 5" in out, out


def test_export_then_verify_offline(config: Path, tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    code, out = run(config, "export", "--format", "csv", "--user", "=evil", "-o", str(target))
    assert code == 0, out
    assert "'=evil" in target.read_text()
    code, out = run(config, "verify", "--export", str(target))
    assert code == 0 and "export intact: 1 records" in out, out
    target.write_text(target.read_text().replace("'=evil", "'=good"))
    code, out = run(config, "verify", "--export", str(target))
    assert code == 1 and "DAMAGED" in out
    code, out = run(config, "verify")
    assert code == 0, out  # the export record itself is in the chain


def test_purge_and_keygen(config: Path, tmp_path: Path) -> None:
    code, out = run(config, "purge", "--older-than", "0s", "--yes")
    assert code == 0 and "purged 32 records" in out, out
    code, out = run(config, "verify")
    assert code == 0, out
    code, out = run(config, "keygen", str(tmp_path / "signing.pem"))
    assert code == 0 and "BEGIN PUBLIC KEY" in out
    assert (tmp_path / "signing.pem").stat().st_mode & 0o077 == 0
