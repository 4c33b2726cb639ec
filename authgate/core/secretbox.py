"""Secrets at rest (TOTP seeds and the like) sealed with AES-256-GCM under a rotating keyring.

ASVS 2.8.2: OTP seeds are protected, with the key outside the database. Tokens look like
``v1.<kid>.<nonce>.<ciphertext>`` (base64url, no padding) so each row names the key that
sealed it and keys can be rotated the way pyca/cryptography's ``MultiFernet`` does: the first
key encrypts, every key decrypts, :meth:`Keyring.rotate` re-seals under the first.

The associated data binds a token to its row (for example ``b"totp:" + credential id``), so a
ciphertext copied into another user's row does not decrypt. The version and key id are bound
too. Nonces are 96 random bits (NIST SP 800-38D §8.2.2): safe for far more than the number of
secrets a city will ever seal under one key.

Base layer: imports only the standard library, ``cryptography`` and :mod:`authgate.core.errors`.
Key material never appears in a repr, an exception message or a traceback.
"""
from __future__ import annotations

import base64
import binascii
import re
import secrets
from collections.abc import Mapping, Sequence
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from authgate.core.errors import AuthgateError

VERSION: Final = "v1"
KEY_BYTES: Final = 32
NONCE_BYTES: Final = 12
_KID = re.compile(r"[A-Za-z0-9_-]{1,32}")
_DOMAIN: Final = b"authgate-secretbox"


class SecretBoxError(AuthgateError):
    """A token could not be opened or a key spec is invalid. ``reason`` says which:

    ``key_spec_invalid``, ``malformed``, ``unknown_key``, ``decrypt_failed``.
    """

    reason = "secretbox_error"

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        super().__init__(detail or reason)


def generate_key_spec(kid: str) -> str:
    """A new ``"<kid>:<base64url 32-byte key>"`` spec from ``secrets``, for the config file."""
    _check_kid(kid)
    return f"{kid}:{base64.urlsafe_b64encode(secrets.token_bytes(KEY_BYTES)).decode('ascii')}"


class Keyring:
    """AES-256-GCM keys by id; the primary (first) one seals, all of them open."""

    __slots__ = ("_primary", "_aeads")

    def __init__(self, keys: Mapping[str, bytes], *, primary: str) -> None:
        if not keys or primary not in keys:
            raise SecretBoxError("key_spec_invalid", "the keyring needs a primary key")
        for kid, key in keys.items():
            _check_kid(kid)
            if len(key) != KEY_BYTES:
                raise SecretBoxError("key_spec_invalid", f"key {kid!r} is not {KEY_BYTES} bytes")
        self._primary = primary
        self._aeads = {kid: AESGCM(key) for kid, key in keys.items()}

    @classmethod
    def from_spec(cls, specs: Sequence[str]) -> Keyring:
        """Build from ``["<kid>:<base64 key>", ...]``; the first spec is the primary key.

        Standard or URL-safe base64 is accepted. Duplicate key ids are refused.
        """
        if isinstance(specs, str) or not specs:
            raise SecretBoxError("key_spec_invalid", "give a non-empty list of key specs")
        keys: dict[str, bytes] = {}
        for position, spec in enumerate(specs):
            kid, sep, encoded = spec.partition(":")
            if not sep:
                raise SecretBoxError("key_spec_invalid", f"key spec #{position} lacks 'kid:'")
            _check_kid(kid)
            if kid in keys:
                raise SecretBoxError("key_spec_invalid", f"key id {kid!r} appears twice")
            keys[kid] = _decode_key(kid, encoded)
        return cls(keys, primary=next(iter(keys)))

    @property
    def primary_kid(self) -> str:
        return self._primary

    @property
    def kids(self) -> tuple[str, ...]:
        return tuple(self._aeads)

    def __repr__(self) -> str:
        return f"Keyring(primary={self._primary!r}, kids={self.kids!r})"

    def encrypt(self, plaintext: bytes, *, associated_data: bytes) -> str:
        """Seal ``plaintext`` under the primary key, bound to ``associated_data``."""
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = self._aeads[self._primary].encrypt(
            nonce, plaintext, _aad(self._primary, associated_data))
        return ".".join((VERSION, self._primary, _b64(nonce), _b64(sealed)))

    def decrypt(self, token: str, *, associated_data: bytes) -> bytes:
        """Open a token sealed by any key in the ring; any change to it, or to the associated
        data, raises :class:`SecretBoxError` (``decrypt_failed``)."""
        kid, nonce, sealed = _parse(token)
        aead = self._aeads.get(kid)
        if aead is None:
            raise SecretBoxError("unknown_key", f"no key with id {kid!r} in the keyring")
        try:
            return aead.decrypt(nonce, sealed, _aad(kid, associated_data))
        except InvalidTag:
            raise SecretBoxError("decrypt_failed", "token or associated data altered") from None

    def needs_rotation(self, token: str) -> bool:
        """True when the token was sealed by a key other than the primary."""
        kid, _, _ = _parse(token)
        return kid != self._primary

    def rotate(self, token: str, *, associated_data: bytes) -> str:
        """Re-seal under the primary key. The token is always opened (so a damaged one is
        found); one already under the primary key is returned unchanged."""
        plaintext = self.decrypt(token, associated_data=associated_data)
        if not self.needs_rotation(token):
            return token
        return self.encrypt(plaintext, associated_data=associated_data)


def _aad(kid: str, associated_data: bytes) -> bytes:
    # kid is [A-Za-z0-9_-], so NUL separators make the encoding unambiguous.
    return b"\x00".join((_DOMAIN, VERSION.encode(), kid.encode("ascii"), associated_data))


def _parse(token: str) -> tuple[str, bytes, bytes]:
    parts = token.split(".") if isinstance(token, str) else []
    if len(parts) != 4 or parts[0] != VERSION or not _KID.fullmatch(parts[1]):
        raise SecretBoxError("malformed", "not a v1 secretbox token")
    nonce, sealed = _unb64(parts[2]), _unb64(parts[3])
    if len(nonce) != NONCE_BYTES or len(sealed) < 16:
        raise SecretBoxError("malformed", "nonce or ciphertext has the wrong length")
    return parts[1], nonce, sealed


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    if not re.fullmatch(r"[A-Za-z0-9_-]*", text):
        raise SecretBoxError("malformed", "bad base64url")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise SecretBoxError("malformed", "bad base64url") from None
    if _b64(data) != text:  # canonical only: no two spellings of one token
        raise SecretBoxError("malformed", "non-canonical base64url")
    return data


def _decode_key(kid: str, encoded: str) -> bytes:
    text = encoded.strip().replace("-", "+").replace("_", "/")
    try:
        key = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise SecretBoxError("key_spec_invalid", f"key {kid!r} is not base64") from None
    if len(key) != KEY_BYTES:
        raise SecretBoxError("key_spec_invalid", f"key {kid!r} is not {KEY_BYTES} bytes")
    return key


def _check_kid(kid: str) -> None:
    if not isinstance(kid, str) or not _KID.fullmatch(kid):
        raise SecretBoxError("key_spec_invalid", "key ids are 1-32 of [A-Za-z0-9_-]")
