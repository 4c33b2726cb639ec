"""Checks shared by both WebAuthn ceremonies, each failing with one precise reason.

py_webauthn performs these checks too, but reports them all as one exception class with
free-text messages. We run them first, in spec order, so the audit log gets a stable reason
code, and then let the library verify again (defence in depth) plus what only it does
(signatures, attestation statements).

Spec: W3C Web Authentication Level 3, https://www.w3.org/TR/webauthn-3/ (§7.1 registration,
§7.2 assertion, §5.8.1 CollectedClientData, §6.1 authenticator data).
"""
from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Callable, Sequence
from enum import Enum
from typing import Any, Final, Literal, TypeVar

from webauthn.helpers import (
    base64url_to_bytes,
    bytes_to_base64url,
    parse_authenticator_data,
    parse_client_data_json,
)
from webauthn.helpers.structs import AuthenticatorData, ClientDataType

from authgate.factors.errors import WebAuthnFailed

UserVerification = Literal["required", "preferred", "discouraged"]

#: Browsers send a few kilobytes at most (attestation certificate chains included).
MAX_CREDENTIAL_JSON: Final = 64 * 1024
#: §13.4.3 Cryptographic Challenges: at least 16 random bytes; ASVS 2.9.2 asks >= 64 bits.
MIN_CHALLENGE_BYTES: Final = 16
CHALLENGE_BYTES: Final = 32

T = TypeVar("T")
_BASE64URL = re.compile(r"[A-Za-z0-9_-]*={0,2}")


def parse_or_malformed(parse: Callable[[Any], T], value: Any) -> T:
    """Run a py_webauthn parser; any failure at all is ``malformed``.

    The parsers raise their own exceptions, but also ``ValueError`` or CBOR errors on odd
    input: nothing unmapped may escape this boundary ("an error can never result in an
    authenticated user", and never in a stack trace either).
    """
    try:
        return parse(value)
    except Exception as exc:  # noqa: BLE001 - fail closed on anything the parser raises
        raise WebAuthnFailed("malformed", f"{type(exc).__name__}") from exc


def enum_text(value: Enum | str) -> str:
    """py_webauthn types these fields as enums but hands some over as plain strings."""
    return str(value.value) if isinstance(value, Enum) else str(value)


def json_object(credential_json: str, *, binary_fields: Sequence[str] = ()) -> dict[str, Any]:
    """The credential as a dict: size-limited, a JSON object, and each of ``rawId`` and the
    named ``response`` fields, when present, strictly base64url (the library's decoder skips
    stray characters, so ``"%%%"`` would otherwise become an empty value)."""
    if not isinstance(credential_json, str) or len(credential_json) > MAX_CREDENTIAL_JSON:
        raise WebAuthnFailed("malformed", "credential is not a JSON string of sane size")
    try:
        value = json.loads(credential_json)
    except ValueError:
        raise WebAuthnFailed("malformed", "credential is not JSON") from None
    if not isinstance(value, dict):
        raise WebAuthnFailed("malformed", "credential is not a JSON object")
    response = value.get("response")
    fields = [value.get("rawId")]
    if isinstance(response, dict):
        fields += [response.get(name) for name in binary_fields]
    for field in fields:
        if isinstance(field, str) and not _BASE64URL.fullmatch(field):
            raise WebAuthnFailed("malformed", "a binary field is not base64url")
    return value


def credential_id_of(credential_json: str) -> bytes:
    """The credential id (``rawId``) of a browser response, so the caller can look up the
    stored public key and sign count before verifying (§7.2 step 5)."""
    value = json_object(credential_json)  # checks rawId is strict base64url
    raw_id = value.get("rawId")
    decoded = parse_or_malformed(base64url_to_bytes, raw_id) if isinstance(raw_id, str) else b""
    if not decoded or value.get("id") != bytes_to_base64url(decoded):
        raise WebAuthnFailed("malformed", "id and rawId are missing or differ")
    return decoded


def user_handle_of(credential_json: str) -> bytes | None:
    """The user handle an assertion carries (always present for discoverable credentials,
    §7.2 step 6), or None. Lets a passkey sign-in find the user without a username."""
    response = json_object(credential_json, binary_fields=("userHandle",)).get("response")
    if not isinstance(response, dict):
        raise WebAuthnFailed("malformed", "credential has no response")
    handle = response.get("userHandle")
    if handle is None or handle == "":
        return None
    if not isinstance(handle, str):
        raise WebAuthnFailed("malformed", "userHandle is not a string")
    return parse_or_malformed(base64url_to_bytes, handle)


def check_challenge_arg(challenge: bytes) -> bytes:
    if not isinstance(challenge, bytes) or len(challenge) < MIN_CHALLENGE_BYTES:
        raise ValueError(f"a challenge must be at least {MIN_CHALLENGE_BYTES} bytes")
    return challenge


def check_origins_arg(expected_origins: Sequence[str]) -> list[str]:
    if isinstance(expected_origins, str) or not expected_origins:
        raise ValueError("expected_origins must be a non-empty sequence of origins")
    return list(expected_origins)


def check_client_data(client_data_json: bytes, *, ceremony: ClientDataType,
                      expected_challenge: bytes, expected_origins: Sequence[str]) -> None:
    """§7.1 steps 7-11 / §7.2 steps 10-14: type, challenge, origin, not cross-origin."""
    client_data = parse_or_malformed(parse_client_data_json, client_data_json)
    if client_data.type != ceremony:
        raise WebAuthnFailed("wrong_ceremony", f"clientData.type is {client_data.type!r}")
    if not hmac.compare_digest(client_data.challenge, expected_challenge):
        raise WebAuthnFailed("challenge_mismatch")
    if client_data.origin not in expected_origins:
        raise WebAuthnFailed("origin_mismatch", f"origin {client_data.origin!r}")
    if client_data.cross_origin:
        # We never embed the ceremony in an iframe; §13.4.2 advises refusing it then.
        raise WebAuthnFailed("cross_origin")


def parse_auth_data(authenticator_data: bytes) -> AuthenticatorData:
    return parse_or_malformed(parse_authenticator_data, authenticator_data)


def check_auth_data(auth_data: AuthenticatorData, *, expected_rp_id: str,
                    require_user_verification: bool) -> None:
    """§7.1 steps 13-15 / §7.2 steps 15-17: RP ID hash, user present, user verified."""
    expected_hash = hashlib.sha256(expected_rp_id.encode("utf-8")).digest()
    if not hmac.compare_digest(auth_data.rp_id_hash, expected_hash):
        raise WebAuthnFailed("rp_id_mismatch")
    if not auth_data.flags.up:
        raise WebAuthnFailed("user_not_present")
    if require_user_verification and not auth_data.flags.uv:
        raise WebAuthnFailed("user_not_verified")
