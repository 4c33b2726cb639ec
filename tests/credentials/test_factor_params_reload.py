"""TOTP and WebAuthn parameters follow an approved policy reload without a restart, the way
regulation thresholds do (review §1.6: they used to be frozen at start-up)."""
from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import select

from authgate.composition.root import build_services
from authgate.core.values import RequestMeta
from authgate.storage.engine import migrate
from authgate.storage.tables_factors import challenges
from authgate.storage.timeconv import from_micros
from tests.conftest import ROOT, make_settings


def _digits(uri: str) -> str:
    """The URI omits the RFC 6238 default (6)."""
    return parse_qs(urlsplit(uri).query).get("digits", ["6"])[0]


def test_reload_changes_totp_and_webauthn_parameters(tmp_path: Path, users_file: Path,
                                                      clock) -> None:  # type: ignore[no-untyped-def]
    policy_dir = tmp_path / "policies"
    shutil.copytree(ROOT / "policies", policy_dir,
                    ignore=shutil.ignore_patterns("approvals.yaml"))
    settings = make_settings(tmp_path, users_file, policy={"path": str(policy_dir)})
    migrate(settings.storage.url)
    services = build_services(settings, clock=clock)
    mfa = services.mfa
    before = mfa.totp.start(username="alice", name="Phone", meta=RequestMeta())
    assert _digits(before.uri) == "6" and mfa.params().challenge_ttl_seconds == 120

    globals_file = policy_dir / "00-globals.yaml"
    text = globals_file.read_text()
    assert "    digits: 6\n" in text and "challenge_ttl: 2m " in text
    globals_file.write_text(text.replace("    digits: 6\n", "    digits: 8\n")
                            .replace("challenge_ttl: 2m ", "challenge_ttl: 5m "))
    result = services.policies.reload()
    assert result.changed and not result.problems

    after = mfa.totp.start(username="alice", name="Phone 2", meta=RequestMeta())
    assert _digits(after.uri) == "8" and mfa.params().totp_digits == 8
    mfa.webauthn.begin_authentication(key="k" * 64, username=None, require_uv=False)
    with services.engine.connect() as conn:
        expires = conn.execute(select(challenges.c.expires_at)).scalar_one()
    assert from_micros(expires) == clock.now() + timedelta(minutes=5)
