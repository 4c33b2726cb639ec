"""The signed identity header (ASVS 14.5.4): apps can prove the identity came from authgate."""
from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from authgate.access.identity_token import IdentityTokenInvalid, verify_identity_token
from authgate.composition.root import build_services
from authgate.storage.engine import migrate
from tests.conftest import make_settings, verify_headers


@pytest.fixture
def signed(tmp_path, users_file, clock):  # type: ignore[no-untyped-def]
    from authgate.web import create_app
    from tests.conftest import AuthActions

    key_file = tmp_path / "identity.pem"
    key_file.write_bytes(Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    settings = make_settings(tmp_path, users_file, server={"identity_key_file": str(key_file)})
    migrate(settings.storage.url)
    services = build_services(settings, clock=clock)
    client = create_app({"services": services, "TESTING": True}).test_client()
    AuthActions(client).login()
    return client, services


def test_allowed_requests_carry_a_verifiable_token(signed, clock) -> None:  # type: ignore[no-untyped-def]
    client, services = signed
    token = client.get("/verify", headers=verify_headers(host="localhost:8080")
                       ).headers["Remote-Identity"]
    pem = client.get("/.well-known/authgate/identity-key.pem").data
    public = serialization.load_pem_public_key(pem)
    ok = verify_identity_token(token, public_key=public, expected_audience="localhost",
                               expected_issuer="https://localhost:9091", now=clock.now())
    assert ok.subject == "alice" and "IT-Dept" in ok.groups and ok.level == "password"
    with pytest.raises(IdentityTokenInvalid):  # another app's audience
        verify_identity_token(token, public_key=public, expected_audience="hr.city.test",
                              expected_issuer="https://localhost:9091", now=clock.now())
    clock.advance(seconds=61)
    with pytest.raises(IdentityTokenInvalid):  # a minute later: expired
        verify_identity_token(token, public_key=public, expected_audience="localhost",
                              expected_issuer="https://localhost:9091", now=clock.now())
    head, body, sig = token.split(".")
    forged = f"{head}.{body[:-2]}AA.{sig}"
    with pytest.raises(IdentityTokenInvalid):
        verify_identity_token(forged, public_key=public, expected_audience="localhost",
                              expected_issuer="https://localhost:9091", now=clock.now())


def test_no_key_no_header(client, auth) -> None:  # type: ignore[no-untyped-def]
    auth.login()
    assert "Remote-Identity" not in client.get("/verify", headers=verify_headers()).headers
    assert client.get("/.well-known/authgate/identity-key.pem").status_code == 404


def test_a_token_that_cannot_be_signed_is_a_403_and_audited(signed, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """After an allow decision the answer still has to be built: if signing the identity
    token fails, the proxy gets 403 (nginx makes a 500 of anything else) and the trail holds
    the allow decision followed by the refusal."""
    from sqlalchemy import select

    from authgate.storage.tables import audit_events

    client, services = signed

    def broken(**_kwargs: object) -> str:
        raise OSError("the key is gone")

    monkeypatch.setattr(services.identity_signer, "sign", broken)
    r = client.get("/verify", headers={**verify_headers(host="localhost:8080"),
                                       "X-Request-ID": "sign-fails-1"})
    assert r.status_code == 403 and "Remote-User" not in r.headers
    with services.engine.connect() as conn:
        rows = conn.execute(select(audit_events.c.outcome, audit_events.c.reason)
                            .where(audit_events.c.request_id == "sign-fails-1")
                            .order_by(audit_events.c.id)).all()
    assert [tuple(r) for r in rows] == [("allow", "allowed"), ("error", "internal_error")]
