"""A software WebAuthn authenticator for tests through the Flask client (what a phisher's
script can do: claim user verification, choose the attestation it sends).

It builds real CTAP2 structures (W3C WebAuthn L3 §6.1 authenticator data, §6.5 attestation
objects, ES256 COSE keys) that py_webauthn verifies like a browser's; ``none`` attestation,
or ``packed`` with an x5c chain signed by a test CA (``AttestationCa``).
"""
from __future__ import annotations

import base64
import datetime
import hashlib
import json
import secrets
import struct
from dataclasses import dataclass, field

import cbor2
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

UP, UV, AT = 0x01, 0x04, 0x40


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "CA"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Test Keys Inc"),
                      x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME,
                                         "Authenticator Attestation"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


@dataclass
class AttestationCa:
    """A root CA that signs authenticator attestation certificates (the vendor's root)."""

    key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    cert: x509.Certificate | None = None

    def __post_init__(self) -> None:
        now = datetime.datetime.now(datetime.UTC)
        self.cert = (x509.CertificateBuilder().subject_name(_name("Test Root"))
                     .issuer_name(_name("Test Root")).public_key(self.key.public_key())
                     .serial_number(x509.random_serial_number())
                     .not_valid_before(now - datetime.timedelta(days=1))
                     .not_valid_after(now + datetime.timedelta(days=3650))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
                     .sign(self.key, hashes.SHA256()))

    @property
    def pem(self) -> bytes:
        assert self.cert is not None
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def issue(self, key: ec.EllipticCurvePrivateKey) -> bytes:
        assert self.cert is not None
        now = datetime.datetime.now(datetime.UTC)
        return (x509.CertificateBuilder().subject_name(_name("Batch"))
                .issuer_name(self.cert.subject).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(days=1))
                .not_valid_after(now + datetime.timedelta(days=365))
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
                .sign(self.key, hashes.SHA256())).public_bytes(serialization.Encoding.DER)


@dataclass
class SoftKey:
    """One credential on a software authenticator."""

    rp_id: str = "localhost"
    origin: str = "https://localhost:9091"
    aaguid: bytes = bytes(16)
    uv: bool = True
    key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    credential_id: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    sign_count: int = 0
    user_handle: bytes = b""

    def _flags(self) -> int:
        return UP | (UV if self.uv else 0)

    def _cose(self) -> bytes:
        numbers = self.key.public_key().public_numbers()
        return cbor2.dumps({1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32, "big"),
                            -3: numbers.y.to_bytes(32, "big")})

    def _client_data(self, kind: str, challenge: str) -> bytes:
        return json.dumps({"type": kind, "challenge": challenge, "origin": self.origin,
                           "crossOrigin": False}).encode()

    def register(self, options: dict[str, object], *, ca: AttestationCa | None = None,
                 self_attest: bool = False) -> str:
        """``navigator.credentials.create`` for ``options`` (the server's JSON): the
        credential's ``toJSON()``. ``ca``: packed attestation with an x5c chain."""
        user = options["user"]
        assert isinstance(user, dict)
        self.user_handle = unb64(str(user["id"]))
        client_data = self._client_data("webauthn.create", str(options["challenge"]))
        auth_data = (hashlib.sha256(self.rp_id.encode()).digest()
                     + bytes([self._flags() | AT]) + struct.pack(">I", self.sign_count)
                     + self.aaguid + struct.pack(">H", len(self.credential_id))
                     + self.credential_id + self._cose())
        signed = auth_data + hashlib.sha256(client_data).digest()
        if ca is not None:
            attestation_key = ec.generate_private_key(ec.SECP256R1())
            statement = {"alg": -7, "x5c": [ca.issue(attestation_key)],
                         "sig": attestation_key.sign(signed, ec.ECDSA(hashes.SHA256()))}
            fmt = "packed"
        elif self_attest:
            statement = {"alg": -7, "sig": self.key.sign(signed, ec.ECDSA(hashes.SHA256()))}
            fmt = "packed"
        else:
            statement, fmt = {}, "none"
        attestation = cbor2.dumps({"fmt": fmt, "attStmt": statement, "authData": auth_data})
        return json.dumps({
            "id": b64(self.credential_id), "rawId": b64(self.credential_id),
            "type": "public-key", "clientExtensionResults": {},
            "authenticatorAttachment": "cross-platform",
            "response": {"clientDataJSON": b64(client_data),
                         "attestationObject": b64(attestation), "transports": ["usb"]}})

    def assert_(self, options: dict[str, object]) -> str:
        """``navigator.credentials.get`` for ``options``: the assertion's ``toJSON()``."""
        self.sign_count += 1
        client_data = self._client_data("webauthn.get", str(options["challenge"]))
        auth_data = (hashlib.sha256(self.rp_id.encode()).digest() + bytes([self._flags()])
                     + struct.pack(">I", self.sign_count))
        signature = self.key.sign(auth_data + hashlib.sha256(client_data).digest(),
                                  ec.ECDSA(hashes.SHA256()))
        return json.dumps({
            "id": b64(self.credential_id), "rawId": b64(self.credential_id),
            "type": "public-key", "clientExtensionResults": {},
            "authenticatorAttachment": "cross-platform",
            "response": {"clientDataJSON": b64(client_data),
                         "authenticatorData": b64(auth_data), "signature": b64(signature),
                         "userHandle": b64(self.user_handle)}})
