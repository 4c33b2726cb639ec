"""Issue 14 item 5: a session the policy treats as anonymous (a break-glass password before
WebAuthn) sends no identity, not even on a bypass path where the request is allowed."""
from __future__ import annotations

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from authgate.composition.root import build_services
from authgate.core.values import Level
from authgate.directory.file import FileDirectory
from authgate.storage.engine import migrate
from tests.conftest import FAST_HASHER, make_settings, session_cookie, verify_headers

IDENTITY = ("Remote-User", "Remote-Groups", "Remote-Name", "Remote-Email", "Remote-Identity")


def _client(tmp_path, users_file, clock):  # type: ignore[no-untyped-def]
    from authgate.web import create_app

    local = tmp_path / "break-glass.yaml"
    FileDirectory(local, hasher=FAST_HASHER).add_user("breakglass-1", "x" * 32,
                                                      groups=["authgate-admins"])
    key_file = tmp_path / "identity.pem"
    key_file.write_bytes(Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    settings = make_settings(tmp_path, users_file, directory={"break_glass_file": str(local)},
                             server={"identity_key_file": str(key_file)})
    migrate(settings.storage.url)
    services = build_services(settings, clock=clock)
    return create_app({"services": services, "TESTING": True}).test_client(), services


def test_break_glass_before_webauthn_gets_no_identity_on_a_bypass_path(
        tmp_path, users_file, clock) -> None:  # type: ignore[no-untyped-def]
    client, services = _client(tmp_path, users_file, clock)
    session_cookie(client, services, "breakglass-1", Level.PASSWORD)
    r = client.get("/verify", headers=verify_headers("/public/page"))
    assert r.status_code == 200
    assert [h for h in IDENTITY if h in r.headers] == []
    assert client.get("/verify", headers=verify_headers("/app/page")).status_code == 401


def test_break_glass_after_webauthn_and_normal_users_keep_their_identity(
        tmp_path, users_file, clock) -> None:  # type: ignore[no-untyped-def]
    client, services = _client(tmp_path, users_file, clock)
    session_cookie(client, services, "breakglass-1", Level.PHISHING_RESISTANT)
    r = client.get("/verify", headers=verify_headers("/public/page"))
    assert r.status_code == 200 and r.headers["Remote-User"] == "breakglass-1"
    assert "Remote-Identity" in r.headers
    session_cookie(client, services, "alice", Level.PASSWORD)
    r = client.get("/verify", headers=verify_headers("/public/page"))
    assert r.status_code == 200 and r.headers["Remote-User"] == "alice"
