"""WebAuthn registration ceremony (W3C WebAuthn L3 §7.1): binding a new security key or passkey.

Stateless like py_webauthn: :func:`registration_options` returns the challenge for the caller
to keep (single use, short-lived, bound to the login session); :func:`verify_registration`
takes it back as ``expected_challenge``. The caller must also refuse a ``credential_id``
already registered to any user (§7.1 step 26) and store public key, sign count, transports,
AAGUID and backup state.
"""
from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from webauthn import generate_registration_options, options_to_json, verify_registration_response
from webauthn.helpers import (
    bytes_to_base64url,
    decode_credential_public_key,
    parse_attestation_object,
)
from webauthn.helpers.cose import COSEAlgorithmIdentifier
from webauthn.helpers.parse_registration_credential_json import (
    parse_registration_credential_json,
)
from webauthn.helpers.structs import (
    AttestationConveyancePreference,
    AttestationFormat,
    AttestedCredentialData,
    AuthenticatorSelectionCriteria,
    ClientDataType,
    PublicKeyCredentialDescriptor,
    RegistrationCredential,
    ResidentKeyRequirement,
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
    parse_or_malformed,
)

Attestation = Literal["none", "indirect", "direct", "enterprise"]
ResidentKey = Literal["required", "preferred", "discouraged"]

#: COSE algorithms accepted (§5.3 pubKeyCredParams), in preference order: ES256 (every
#: security key), EdDSA, RS256 (Windows Hello).
SUPPORTED_ALGORITHMS: tuple[COSEAlgorithmIdentifier, ...] = (
    COSEAlgorithmIdentifier.ECDSA_SHA_256,
    COSEAlgorithmIdentifier.EDDSA,
    COSEAlgorithmIdentifier.RSASSA_PKCS1_v1_5_SHA_256,
)
_BINARY = ("clientDataJSON", "attestationObject")
#: §5.4.3: user.id is at most 64 bytes and must carry no personal information.
MAX_USER_ID_BYTES = 64
#: L3 §7.1 step 24: credential ids longer than this are refused.
MAX_CREDENTIAL_ID_BYTES = 1023


@dataclass(frozen=True, slots=True)
class RegistrationChallenge:
    """What to send the browser (``options_json``) and what to keep (``challenge``)."""

    options_json: str
    challenge: bytes


@dataclass(frozen=True, slots=True)
class VerifiedRegistration:
    """A verified new credential, everything the caller needs to store."""

    credential_id: bytes
    #: COSE_Key bytes, passed back as ``credential_public_key`` at authentication
    public_key: bytes
    sign_count: int
    #: authenticator model, e.g. ``"cb69481e-8ff7-4039-93ec-0a2729a154a8"``; all zeros when
    #: the authenticator hides it; only trustworthy with verified (non-``none``) attestation
    aaguid: str
    user_verified: bool
    transports: tuple[str, ...]
    #: §6.1.3 BS flag: the credential is currently synced (backed up)
    backed_up: bool
    #: ``"single_device"`` or ``"multi_device"`` (BE flag: a syncable passkey)
    device_type: str
    attestation_format: str
    #: the attestation chained to a configured root (only with ``attestation_roots``): the
    #: AAGUID is then the authenticator model's, not the client's claim
    attested: bool = False


def registration_options(*, rp_id: str, rp_name: str, user_id: bytes, user_name: str,
                         user_display_name: str, exclude_credential_ids: Sequence[bytes] = (),
                         user_verification: UserVerification = "preferred",
                         attestation: Attestation = "none",
                         resident_key: ResidentKey = "preferred",
                         challenge: bytes | None = None,
                         timeout_ms: int = 120_000) -> RegistrationChallenge:
    """Options for ``navigator.credentials.create()`` (§5.4), as JSON for the page.

    ``exclude_credential_ids`` (§5.4 excludeCredentials) stops the user registering the same
    authenticator twice. The challenge is 32 bytes from ``secrets`` unless one is given.
    """
    if not isinstance(user_id, bytes) or not 1 <= len(user_id) <= MAX_USER_ID_BYTES:
        raise ValueError(f"user_id must be 1-{MAX_USER_ID_BYTES} bytes")
    challenge = check_challenge_arg(challenge or secrets.token_bytes(CHALLENGE_BYTES))
    options = generate_registration_options(
        rp_id=rp_id, rp_name=rp_name, user_id=user_id, user_name=user_name,
        user_display_name=user_display_name, challenge=challenge, timeout=timeout_ms,
        attestation=AttestationConveyancePreference(attestation),
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement(resident_key),
            user_verification=UserVerificationRequirement(user_verification)),
        exclude_credentials=[PublicKeyCredentialDescriptor(id=cid)
                             for cid in exclude_credential_ids],
        supported_pub_key_algs=list(SUPPORTED_ALGORITHMS),
    )
    return RegistrationChallenge(options_json=options_to_json(options), challenge=challenge)


def verify_registration(*, credential_json: str, expected_challenge: bytes, expected_rp_id: str,
                        expected_origins: Sequence[str], require_user_verification: bool,
                        aaguid_allowlist: frozenset[str] | None = None,
                        attestation_roots: Sequence[bytes] | None = None
                        ) -> VerifiedRegistration:
    """Verify a ``navigator.credentials.create()`` response (§7.1).

    ``aaguid_allowlist``: the authenticator models accepted (case-insensitive); empty or
    None accepts any, since the allow-list is optional. It is only meaningful with verified
    attestation (``attestation="direct"``): under ``"none"`` the AAGUID is self-asserted and
    browsers zero it. ``attestation_roots`` (PEM certificates) requires attestation (§7.1
    steps 21-23): a ``none`` statement, self attestation (a key vouching for itself) or a
    chain to no given root is refused, and so is everything when no root is given (py_webauthn
    skips the chain check without roots). Raises :class:`WebAuthnFailed` with a precise reason.
    """
    origins = check_origins_arg(expected_origins)
    credential = parse_or_malformed(parse_registration_credential_json,
                                    json_object(credential_json, binary_fields=_BINARY))
    attested = _precheck(credential, expected_challenge=expected_challenge,
                         expected_rp_id=expected_rp_id, expected_origins=origins,
                         require_user_verification=require_user_verification)
    roots = None if attestation_roots is None else _roots(credential, attestation_roots)
    try:
        verified = verify_registration_response(
            credential=credential, expected_challenge=expected_challenge,
            expected_rp_id=expected_rp_id, expected_origin=origins,
            require_user_verification=require_user_verification,
            supported_pub_key_algs=list(SUPPORTED_ALGORITHMS), pem_root_certs_bytes_by_fmt=roots)
    except Exception as exc:  # noqa: BLE001 - all else was prechecked: the attestation failed
        raise WebAuthnFailed("bad_attestation", type(exc).__name__) from exc
    aaguid = verified.aaguid.lower()
    if aaguid_allowlist and aaguid not in {a.lower() for a in aaguid_allowlist}:
        raise WebAuthnFailed("aaguid_not_allowed", f"aaguid {aaguid}")
    return VerifiedRegistration(
        credential_id=attested.credential_id, public_key=attested.credential_public_key,
        sign_count=verified.sign_count, aaguid=aaguid, user_verified=verified.user_verified,
        transports=tuple(t.value for t in credential.response.transports or ()),
        backed_up=verified.credential_backed_up,
        device_type=enum_text(verified.credential_device_type),
        attestation_format=enum_text(verified.fmt), attested=roots is not None)


def _roots(credential: RegistrationCredential, roots: Sequence[bytes]
           ) -> dict[AttestationFormat, list[bytes]]:
    """The trust anchors for every format, once the statement is one that a root can vouch
    for: a certificate chain (x5c), not ``none`` and not self attestation."""
    statement = parse_or_malformed(parse_attestation_object,
                                   credential.response.attestation_object)
    if statement.fmt == AttestationFormat.NONE or not statement.att_stmt.x5c:
        raise WebAuthnFailed("attestation_required", f"format {enum_text(statement.fmt)}, "
                             "no certificate chain")
    if not roots:
        raise WebAuthnFailed("attestation_untrusted", "no attestation roots configured")
    return {fmt: list(roots) for fmt in AttestationFormat if fmt != AttestationFormat.NONE}


def _precheck(credential: RegistrationCredential, *, expected_challenge: bytes,
              expected_rp_id: str, expected_origins: Sequence[str],
              require_user_verification: bool) -> AttestedCredentialData:
    """§7.1 steps 5-24 that have a reason of their own, in spec order."""
    if bytes_to_base64url(credential.raw_id) != credential.id:
        raise WebAuthnFailed("malformed", "id and rawId differ")
    check_client_data(credential.response.client_data_json,
                      ceremony=ClientDataType.WEBAUTHN_CREATE,
                      expected_challenge=expected_challenge, expected_origins=expected_origins)
    attestation = parse_or_malformed(parse_attestation_object,
                                     credential.response.attestation_object)
    check_auth_data(attestation.auth_data, expected_rp_id=expected_rp_id,
                    require_user_verification=require_user_verification)
    attested = attestation.auth_data.attested_credential_data
    if attested is None or not attested.credential_id or not attested.credential_public_key:
        raise WebAuthnFailed("malformed", "no attested credential data")
    if (len(attested.credential_id) > MAX_CREDENTIAL_ID_BYTES
            or attested.credential_id != credential.raw_id):
        raise WebAuthnFailed("malformed", "credential id too long or not the one attested")
    key = parse_or_malformed(decode_credential_public_key, attested.credential_public_key)
    if key.alg not in SUPPORTED_ALGORITHMS:
        raise WebAuthnFailed("unsupported_algorithm", f"COSE alg {key.alg}")
    return attested
