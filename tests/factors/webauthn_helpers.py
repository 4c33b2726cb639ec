"""Helpers to call the verifiers with a recorded vector and to alter one field of it."""
from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url

from authgate.factors import (
    WEBAUTHN_REASONS,
    VerifiedAuthentication,
    VerifiedRegistration,
    WebAuthnFailed,
    verify_authentication,
    verify_registration,
)
from tests.vectors import WebAuthnVector, webauthn_vector

BOTH_ORIGINS = ("http://localhost:9091", "http://localhost:8080")


def register(vector: WebAuthnVector, **overrides: Any) -> VerifiedRegistration:
    kwargs: dict[str, Any] = dict(
        credential_json=vector.credential_json, expected_challenge=vector.challenge,
        expected_rp_id=vector.rp_id, expected_origins=[vector.origin],
        require_user_verification=False, aaguid_allowlist=None)
    kwargs.update(overrides)
    return verify_registration(**kwargs)


def stored(registration_name: str) -> VerifiedRegistration:
    """What the caller stored when the credential was registered."""
    return register(webauthn_vector(registration_name))


def authenticate(vector: WebAuthnVector, **overrides: Any) -> VerifiedAuthentication:
    assert vector.registration
    credential = stored(vector.registration)
    kwargs: dict[str, Any] = dict(
        credential_json=vector.credential_json, expected_challenge=vector.challenge,
        expected_rp_id=vector.rp_id, expected_origins=[vector.origin],
        credential_public_key=credential.public_key,
        credential_current_sign_count=credential.sign_count,
        require_user_verification=False)
    kwargs.update(overrides)
    return verify_authentication(**kwargs)


def expect_reason(reason: str, call: Callable[[], object]) -> WebAuthnFailed:
    assert reason in WEBAUTHN_REASONS
    with pytest.raises(WebAuthnFailed) as info:
        call()
    assert info.value.reason == reason, info.value
    return info.value


def altered(vector: WebAuthnVector, change: Callable[[dict[str, Any]], None]) -> str:
    """The vector's credential JSON after ``change`` edits a deep copy of it."""
    credential = copy.deepcopy(vector.credential)
    change(credential)
    return json.dumps(credential)


def edit_bytes(field: str, edit: Callable[[bytearray], None]) -> Callable[[dict[str, Any]], None]:
    """A change that decodes ``response[field]``, edits the bytes, re-encodes them."""
    def change(credential: dict[str, Any]) -> None:
        raw = bytearray(base64url_to_bytes(credential["response"][field]))
        edit(raw)
        credential["response"][field] = bytes_to_base64url(bytes(raw))
    return change


def edit_client_data(**fields: Any) -> Callable[[dict[str, Any]], None]:
    def change(credential: dict[str, Any]) -> None:
        data = json.loads(base64url_to_bytes(credential["response"]["clientDataJSON"]))
        data.update(fields)
        credential["response"]["clientDataJSON"] = bytes_to_base64url(
            json.dumps(data).encode())
    return change
