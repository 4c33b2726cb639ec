"""A signed identity header for protected apps (ASVS 14.5.4).

Apps behind the proxy trust ``Remote-User`` only because the proxy overwrites it. Where an
app wants proof, authgate also sends ``Remote-Identity``: a compact JWS (RFC 7515) with
EdDSA / Ed25519 (RFC 8037), audience = the app's host, valid for a minute. Apps verify it with
the public key from ``/.well-known/authgate/identity-key.pem`` (or ``verify_identity_token``).
"""
from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from authgate.core.errors import AuthgateError

LIFETIME = timedelta(seconds=60)


class IdentityTokenInvalid(AuthgateError):
    reason = "identity_token_invalid"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def key_id(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


@dataclass(frozen=True)
class VerifiedIdentity:
    subject: str
    groups: tuple[str, ...]
    level: str
    claims: dict[str, object]


class IdentitySigner:
    def __init__(self, private_key: Ed25519PrivateKey, *, issuer: str) -> None:
        self._key = private_key
        self.public_key = private_key.public_key()
        self._issuer = issuer
        header = {"alg": "EdDSA", "typ": "JWT", "kid": key_id(self.public_key)}
        self._header = _b64(json.dumps(header, separators=(",", ":")).encode())

    @classmethod
    def from_pem_file(cls, path: str, *, issuer: str) -> IdentitySigner:
        with open(path, "rb") as fh:
            key = serialization.load_pem_private_key(fh.read(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError("the identity key must be an Ed25519 private key (PEM)")
        return cls(key, issuer=issuer)

    def public_pem(self) -> bytes:
        return self.public_key.public_bytes(serialization.Encoding.PEM,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)

    def sign(self, *, subject: str, groups: frozenset[str], level: str, name: str, email: str,
             audience: str, now: datetime, token_id: str) -> str:
        claims = {"iss": self._issuer, "aud": audience, "sub": subject,
                  "groups": sorted(groups), "acr": level, "name": name, "email": email,
                  "iat": int(now.timestamp()), "exp": int((now + LIFETIME).timestamp()),
                  "jti": token_id}
        payload = _b64(json.dumps(claims, separators=(",", ":")).encode())
        signing_input = f"{self._header}.{payload}"
        return f"{signing_input}.{_b64(self._key.sign(signing_input.encode()))}"


def verify_identity_token(token: str, *, public_key: Ed25519PublicKey, expected_audience: str,
                          expected_issuer: str, now: datetime) -> VerifiedIdentity:
    """For apps (and tests): check signature, algorithm, issuer, audience and lifetime."""
    try:
        header_b64, payload_b64, signature_b64 = token.split(".")
        header = json.loads(_unb64(header_b64))
        public_key.verify(_unb64(signature_b64), f"{header_b64}.{payload_b64}".encode())
        claims = json.loads(_unb64(payload_b64))
    except (ValueError, InvalidSignature, json.JSONDecodeError) as exc:
        raise IdentityTokenInvalid("bad token or signature") from exc
    if header.get("alg") != "EdDSA":
        raise IdentityTokenInvalid("unexpected algorithm")
    if claims.get("iss") != expected_issuer or claims.get("aud") != expected_audience:
        raise IdentityTokenInvalid("wrong issuer or audience")
    if not claims.get("iat", 0) - 5 <= now.timestamp() < claims.get("exp", 0):
        raise IdentityTokenInvalid("expired or not yet valid")
    return VerifiedIdentity(str(claims["sub"]), tuple(claims.get("groups", ())),
                            str(claims.get("acr", "")), claims)
