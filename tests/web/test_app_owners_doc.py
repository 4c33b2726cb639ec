"""Issue 18 item 7: the verification snippet docs/app-owners.md gives application owners is
run, as written, against a ``Remote-Identity`` token authgate signed (ASVS 14.5.4)."""
from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from authgate.composition.root import build_services
from authgate.storage.engine import migrate
from tests.conftest import make_settings, verify_headers

DOC = Path(__file__).resolve().parents[2] / "docs" / "app-owners.md"


def _snippet() -> Any:
    text = DOC.read_text(encoding="utf-8")
    code = re.search(r"<!-- app-owner snippet -->\n```python\n(.*?)```", text, re.DOTALL)
    assert code, "docs/app-owners.md lost its marked snippet"
    namespace: dict[str, Any] = {}
    exec(compile(code.group(1), str(DOC), "exec"), namespace)  # noqa: S102 - our own doc
    return namespace["verify_remote_identity"]


def test_the_documented_snippet_verifies_a_real_token(tmp_path, users_file, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from authgate.core.clock import SystemClock
    from authgate.web import create_app
    from tests.conftest import AuthActions

    key_file = tmp_path / "identity.pem"
    key_file.write_bytes(Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    settings = make_settings(tmp_path, users_file, server={"identity_key_file": str(key_file)})
    migrate(settings.storage.url)
    client = create_app({"services": build_services(settings, clock=SystemClock()),
                         "TESTING": True}).test_client()
    AuthActions(client).login()
    token = client.get("/verify", headers=verify_headers(host="localhost:8080")
                       ).headers["Remote-Identity"]
    pem = client.get("/.well-known/authgate/identity-key.pem").data
    verify = _snippet()
    issuer = settings.server.public_url
    claims = verify(token, pem, audience="localhost", issuer=issuer)
    assert claims["sub"] == "alice" and "IT-Dept" in claims["groups"]
    assert claims["acr"] == "password"
    head, body, sig = token.split(".")
    for bad, audience in ((f"{head}.{body[:-2]}AA.{sig}", "localhost"),  # forged
                          (token, "hr.city.test")):  # another app's
        with pytest.raises(ValueError):
            verify(bad, pem, audience=audience, issuer=issuer)
    other = Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    with pytest.raises(ValueError):  # signed by another key
        verify(token, other, audience="localhost", issuer=issuer)
    later = time.time() + 61  # a minute later: expired
    monkeypatch.setattr(time, "time", lambda: later)
    with pytest.raises(ValueError):
        verify(token, pem, audience="localhost", issuer=issuer)
