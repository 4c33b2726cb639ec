"""Second-factor failures: one class per kind, a precise ``reason`` for the audit log.

The web layer shows users one generic message per class ("that code was not accepted");
``reason`` goes only to the audit record (style rule 5). No message here ever contains a code,
a secret or key material (ASVS 7.1.1).
"""
from __future__ import annotations

from typing import Final

from authgate.core.errors import AuthgateError


class FactorError(AuthgateError):
    """A second-factor check failed; the caller denies and audits ``reason``."""

    reason = "factor_failed"

    def __init__(self, reason: str | None = None, detail: str = "") -> None:
        if reason is not None:
            self.reason = reason
        super().__init__(detail or self.reason)


class InvalidCode(FactorError):
    """A typed code (TOTP or enrolment code) is wrong, malformed or expired."""

    reason = "invalid_code"


class CodeReplayed(FactorError):
    """A TOTP code for a time step at or before the last accepted one (RFC 6238 §5.2).

    A correct code that is replayed is worth auditing on its own: someone saw it.
    """

    reason = "code_replayed"


class InvalidSecret(FactorError):
    """A stored TOTP secret cannot be decoded: an operator problem, still a denial."""

    reason = "secret_invalid"


class InvalidRecoveryCode(FactorError):
    """No unused recovery code matches (NIST 63B §5.1.2.2)."""

    reason = "invalid_recovery_code"


class WebAuthnFailed(FactorError):
    """A WebAuthn ceremony failed; ``reason`` is one of :data:`WEBAUTHN_REASONS`."""

    reason = "webauthn_failed"


#: Every reason :class:`WebAuthnFailed` may carry, for audit dashboards and tests.
WEBAUTHN_REASONS: Final = frozenset({
    "malformed",             # not JSON, bad base64url, missing fields, undecodable CBOR
    "wrong_ceremony",        # clientData.type is not webauthn.create / webauthn.get
    "challenge_mismatch",    # not the challenge this server issued
    "origin_mismatch",       # clientData.origin not among the expected origins
    "cross_origin",          # created/used inside a cross-origin iframe
    "rp_id_mismatch",        # authenticatorData.rpIdHash is not SHA-256(expected RP ID)
    "user_not_present",      # UP flag clear
    "user_not_verified",     # UV required but flag clear
    "unknown_credential",    # credential id not one the caller allowed / knows
    "user_handle_mismatch",  # userHandle does not belong to the expected user
    "user_handle_missing",   # no userHandle where no user was named first (§7.2 step 6)
    "bad_signature",         # assertion signature does not verify with the stored key
    "bad_public_key",        # the stored public key cannot be decoded
    "sign_count_regressed",  # counter did not increase: possible cloned authenticator
    "unsupported_algorithm", # credential key algorithm not accepted
    "bad_attestation",       # attestation statement does not verify
    "aaguid_not_allowed",    # authenticator model not in the configured allow-list
    "attestation_required",  # policy requires attestation: none / self attestation refused
    "attestation_untrusted",  # policy requires attestation but no trust anchors configured
})
