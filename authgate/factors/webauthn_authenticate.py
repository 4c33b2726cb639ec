"""WebAuthn authentication ceremony (W3C WebAuthn L3 §7.2): proving possession of a credential.

The caller first reads :func:`credential_id_of` (and, for a passkey sign-in without a
username, :func:`user_handle_of`) from the response, loads that credential's public key and
stored sign count, then calls :func:`verify_authentication` and stores ``new_sign_count``.
"""
from __future__ import annotations

import hmac
import secrets
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from webauthn import (
    generate_authentication_options,
    options_to_json,
    verify_authentication_response,
)
from webauthn.helpers import bytes_to_base64url
from webauthn.helpers.exceptions import InvalidAuthenticationResponse
from webauthn.helpers.parse_authentication_credential_json import (
    parse_authentication_credential_json,
)
from webauthn.helpers.structs import (
    AuthenticationCredential,
    AuthenticatorData,
    ClientDataType,
    PublicKeyCredentialDescriptor,
    UserVerificationRequirement,
)

from authgate.factors.errors import WebAuthnFailed
from authgate.factors.webauthn_checks import (
    CHALLENGE_BYTES,
    UserVerification,
    check_auth_data,
    check_challenge_arg,
    check_client_data,
    check_origins_arg,
    enum_text,
    json_object,
    parse_auth_data,
    parse_or_malformed,
)

_BINARY = ("clientDataJSON", "authenticatorData", "signature", "userHandle")


@dataclass(frozen=True, slots=True)
class AuthenticationChallenge:
    """What to send the browser (``options_json``) and what to keep (``challenge``)."""

    options_json: str
    challenge: bytes


@dataclass(frozen=True, slots=True)
class VerifiedAuthentication:
    """A verified assertion. Store ``new_sign_count``; ``user_verified`` decides the level."""

    credential_id: bytes
    new_sign_count: int
    user_verified: bool
    #: the user.id given at registration; present for discoverable credentials (passkeys)
    user_handle: bytes | None
    backed_up: bool
    device_type: str


def authentication_options(*, rp_id: str, allow_credential_ids: Sequence[bytes],
                           user_verification: UserVerification = "preferred",
                           challenge: bytes | None = None,
                           timeout_ms: int = 120_000) -> AuthenticationChallenge:
    """Options for ``navigator.credentials.get()`` (§5.5).

    Empty ``allow_credential_ids`` asks for a discoverable credential (a passkey): the user
    picks an account on the authenticator and no username is typed (§5.5 allowCredentials).
    """
    challenge = check_challenge_arg(challenge or secrets.token_bytes(CHALLENGE_BYTES))
    options = generate_authentication_options(
        rp_id=rp_id, challenge=challenge, timeout=timeout_ms,
        allow_credentials=[PublicKeyCredentialDescriptor(id=cid) for cid in allow_credential_ids],
        user_verification=UserVerificationRequirement(user_verification))
    return AuthenticationChallenge(options_json=options_to_json(options), challenge=challenge)


def verify_authentication(*, credential_json: str, expected_challenge: bytes,
                          expected_rp_id: str, expected_origins: Sequence[str],
                          credential_public_key: bytes, credential_current_sign_count: int,
                          require_user_verification: bool,
                          allowed_credential_ids: Collection[bytes] | None = None,
                          expected_user_handle: bytes | None = None,
                          require_user_handle: bool = False) -> VerifiedAuthentication:
    """Verify a ``navigator.credentials.get()`` response (§7.2). ``allowed_credential_ids``:
    those offered (step 5), others fail ``unknown_credential``. ``expected_user_handle``: the
    owner's (step 6), another fails ``user_handle_mismatch``; with ``require_user_handle`` (no
    user named first: a passkey) none fails ``user_handle_missing``. The sign count is checked
    after the signature (§6.1.1): ``sign_count_regressed``, a clone alarm, needs a genuine one.
    """
    origins = check_origins_arg(expected_origins)
    credential = parse_or_malformed(parse_authentication_credential_json,
                                    json_object(credential_json, binary_fields=_BINARY))
    auth_data = _precheck(credential, expected_challenge=expected_challenge,
                          expected_rp_id=expected_rp_id, expected_origins=origins,
                          require_user_verification=require_user_verification,
                          allowed_credential_ids=allowed_credential_ids,
                          expected_user_handle=expected_user_handle,
                          require_user_handle=require_user_handle)
    try:
        verified = verify_authentication_response(
            credential=credential, expected_challenge=expected_challenge,
            expected_rp_id=expected_rp_id, expected_origin=origins,
            credential_public_key=credential_public_key,
            credential_current_sign_count=0,  # compared below, once the signature is good
            require_user_verification=require_user_verification)
    except InvalidAuthenticationResponse as exc:
        # Everything else was prechecked above: what is left is the signature (§7.2 step 20).
        raise WebAuthnFailed("bad_signature", str(exc)) from exc
    except Exception as exc:  # noqa: BLE001 - the stored key did not decode; fail closed
        raise WebAuthnFailed("bad_public_key", type(exc).__name__) from exc
    _check_sign_count(auth_data.sign_count, credential_current_sign_count)
    return VerifiedAuthentication(
        credential_id=verified.credential_id, new_sign_count=verified.new_sign_count,
        user_verified=verified.user_verified, user_handle=credential.response.user_handle or None,
        backed_up=verified.credential_backed_up,
        device_type=enum_text(verified.credential_device_type))


def _precheck(credential: AuthenticationCredential, *, expected_challenge: bytes,
              expected_rp_id: str, expected_origins: Sequence[str],
              require_user_verification: bool, allowed_credential_ids: Collection[bytes] | None,
              expected_user_handle: bytes | None,
              require_user_handle: bool) -> AuthenticatorData:
    """§7.2 steps 5-17 that have a reason of their own, in spec order."""
    if bytes_to_base64url(credential.raw_id) != credential.id:
        raise WebAuthnFailed("malformed", "id and rawId differ")
    if allowed_credential_ids is not None and credential.raw_id not in allowed_credential_ids:
        raise WebAuthnFailed("unknown_credential")
    _check_user_handle(credential.response.user_handle, expected=expected_user_handle,
                       required=require_user_handle)
    check_client_data(credential.response.client_data_json, ceremony=ClientDataType.WEBAUTHN_GET,
                      expected_challenge=expected_challenge, expected_origins=expected_origins)
    auth_data = parse_auth_data(credential.response.authenticator_data)
    check_auth_data(auth_data, expected_rp_id=expected_rp_id,
                    require_user_verification=require_user_verification)
    return auth_data


def _check_user_handle(handle: bytes | None, *, expected: bytes | None,
                       required: bool) -> None:
    """§7.2 step 6. A user named before the ceremony: a userHandle, if sent, is theirs.
    None named (a passkey): it must be sent, and be the credential's owner's."""
    if required and not expected:
        raise ValueError("require_user_handle needs the owner's expected_user_handle")
    if required and not handle:
        raise WebAuthnFailed("user_handle_missing", "no userHandle for a usernameless sign-in")
    if expected is not None and handle and not hmac.compare_digest(handle, expected):
        raise WebAuthnFailed("user_handle_mismatch")


def _check_sign_count(new: int, stored: int) -> None:
    """§6.1.1 / §7.2 step 21: if either counter is non-zero the new one must be greater.

    Both zero means the authenticator keeps no counter (typical of synced passkeys).
    Otherwise a count that does not increase suggests two copies of one private key.
    """
    if (new or stored) and new <= stored:
        raise WebAuthnFailed("sign_count_regressed", f"counter {new} after {stored}")
