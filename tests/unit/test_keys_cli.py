"""``authgate keys rotate`` re-encrypts every TOTP seed under the new primary key."""
from __future__ import annotations

import yaml
from click.testing import CliRunner

from authgate.cli import main
from authgate.composition.root import build_services
from authgate.core.secretbox import generate_key_spec
from authgate.core.values import RequestMeta
from authgate.storage.engine import migrate
from tests.conftest import TEST_ENCRYPTION_KEY, make_settings


def test_rotate_reencrypts_and_old_key_can_then_go(tmp_path, users_file) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(tmp_path, users_file)
    migrate(settings.storage.url)
    pending = build_services(settings).mfa.totp.start(username="alice", name="app",
                                                      meta=RequestMeta())
    new_key = generate_key_spec("k2")
    config = tmp_path / "authgate.yaml"
    config.write_text(yaml.safe_dump({
        "server": {"public_url": "https://localhost:9091", "protected_domains": ["localhost"]},
        "storage": {"url": settings.storage.url},
        "directory": {"file": {"path": str(users_file)}},
        "policy": {"path": settings.policy.path, "require_approval": False},
        "secrets": {"session_key": "t" * 40, "audit_key": "t" * 40,
                    "encryption_keys": [new_key, TEST_ENCRYPTION_KEY]}}))
    result = CliRunner().invoke(main, ["--config", str(config), "keys", "rotate", "totp",
                                       "--reencrypt"])
    assert result.exit_code == 0, result.output
    assert "re-encrypted 1 secret(s) under k2" in result.output
    data = yaml.safe_load(config.read_text())
    data["secrets"]["encryption_keys"] = [new_key]  # the old key is retired
    config.write_text(yaml.safe_dump(data))
    from authgate.config import load_settings

    services = build_services(load_settings(config, environ={}))
    row = services.mfa.credentials.get(pending.credential_id)
    assert row is not None and row.secret.startswith("v1.k2.")
    from authgate.credentials.totp import totp_aad

    assert services.mfa.keyring.decrypt(row.secret, associated_data=totp_aad(
        row.id, "alice")).decode() == pending.secret
