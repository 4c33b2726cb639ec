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
    #: PEM attestation roots (configuration ``webauthn.attestation_roots_file``)
    attestation_roots: tuple[bytes, ...] = ()

    @property
    def attestation_required(self) -> bool:
        """The policy asks for attested authenticators: a conveyance other than ``none`` or
        an AAGUID allow-list (an AAGUID means nothing unless attestation proved it)."""
        return self.attestation != "none" or bool(self.aaguid_allowlist)

    @property
    def conveyance(self) -> Literal["none", "indirect", "direct", "enterprise"]:
        """What registration options ask for: ``direct`` when only an allow-list is set."""
        return "direct" if self.attestation == "none" and self.aaguid_allowlist else \
            self.attestation
