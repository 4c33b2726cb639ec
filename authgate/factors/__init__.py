"""Pure second-factor checks (TOTP, WebAuthn, recovery codes); the caller keeps replay state."""
from __future__ import annotations

from authgate.factors.enrolment import (
    hash_enrolment_code,
    new_enrolment_code,
    verify_enrolment_code,
)
from authgate.factors.errors import (
    WEBAUTHN_REASONS,
    CodeReplayed,
    FactorError,
    InvalidCode,
    InvalidRecoveryCode,
    InvalidSecret,
    WebAuthnFailed,
)
from authgate.factors.recovery import (
    VerifiedRecoveryCode,
    generate_recovery_codes,
    hash_recovery_code,
    verify_recovery_code,
)
from authgate.factors.totp import (
    VerifiedTotp,
    new_totp_secret,
    provisioning_uri,
    time_step_at,
    verify_totp,
)
from authgate.factors.webauthn import (
    AuthenticationChallenge,
    RegistrationChallenge,
    VerifiedAuthentication,
    VerifiedRegistration,
    authentication_options,
    credential_id_of,
    registration_options,
    user_handle_of,
    verify_authentication,
    verify_registration,
)

__all__ = [
    "WEBAUTHN_REASONS",
    "AuthenticationChallenge",
    "CodeReplayed",
    "FactorError",
    "InvalidCode",
    "InvalidRecoveryCode",
    "InvalidSecret",
    "RegistrationChallenge",
    "VerifiedAuthentication",
    "VerifiedRecoveryCode",
    "VerifiedRegistration",
    "VerifiedTotp",
    "WebAuthnFailed",
    "authentication_options",
    "credential_id_of",
    "generate_recovery_codes",
    "hash_enrolment_code",
    "hash_recovery_code",
    "new_enrolment_code",
    "new_totp_secret",
    "provisioning_uri",
    "registration_options",
    "time_step_at",
    "user_handle_of",
    "verify_authentication",
    "verify_enrolment_code",
    "verify_recovery_code",
    "verify_registration",
    "verify_totp",
]
