"""WebAuthn security keys and passkeys: thin, typed wrappers over py_webauthn by ceremony.

* registration (W3C WebAuthn L3 §7.1): :func:`registration_options`, :func:`verify_registration`
* authentication (§7.2): :func:`authentication_options`, :func:`credential_id_of`,
  :func:`user_handle_of`, :func:`verify_authentication`

Stateless: the caller keeps each challenge (single use, short-lived, ASVS 2.9.2) and the
credential's public key and sign count. Every failure is a :class:`WebAuthnFailed` whose
``reason`` is one of :data:`~authgate.factors.errors.WEBAUTHN_REASONS`; no py_webauthn or
cryptography exception escapes. Spec: https://www.w3.org/TR/webauthn-3/
"""
from __future__ import annotations

from authgate.factors.webauthn_authenticate import (
    AuthenticationChallenge,
    VerifiedAuthentication,
    authentication_options,
    verify_authentication,
)
from authgate.factors.webauthn_checks import UserVerification, credential_id_of, user_handle_of
from authgate.factors.webauthn_register import (
    SUPPORTED_ALGORITHMS,
    Attestation,
    RegistrationChallenge,
    ResidentKey,
    VerifiedRegistration,
    registration_options,
    verify_registration,
)

__all__ = [
    "SUPPORTED_ALGORITHMS",
    "Attestation",
    "AuthenticationChallenge",
    "RegistrationChallenge",
    "ResidentKey",
    "UserVerification",
    "VerifiedAuthentication",
    "VerifiedRegistration",
    "authentication_options",
    "credential_id_of",
    "registration_options",
    "user_handle_of",
    "verify_authentication",
    "verify_registration",
]
