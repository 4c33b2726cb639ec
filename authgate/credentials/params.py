"""The second factors' parameters: TOTP and WebAuthn from the approved policy (re-read
after a reload), the relying party from configuration."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class FactorParams:
    """Factor parameters: TOTP and WebAuthn from the approved policy, RP from configuration."""

    totp_digits: int = 6
    totp_period: int = 30
    totp_algorithm: str = "SHA1"
    totp_valid_window: int = 1
    issuer: str = "City staff sign-in"
    rp_id: str = "localhost"
    rp_name: str = "City staff sign-in"
    origins: tuple[str, ...] = ()
    user_verification: Literal["required", "preferred", "discouraged"] = "preferred"
    attestation: Literal["none", "indirect", "direct", "enterprise"] = "none"
    aaguid_allowlist: frozenset[str] = frozenset()
    challenge_ttl_seconds: int = 120
