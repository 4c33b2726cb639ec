"""Shared pieces of the second-factor use cases."""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Literal

from authgate.audit import AuditLog
from authgate.core.clock import Clock
from authgate.core.values import AuditEvent, Outcome, RequestMeta


def new_id() -> str:
    return secrets.token_hex(16)


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


class Recorder:
    """One audit record per factor outcome, with the request's metadata."""

    def __init__(self, audit: AuditLog, clock: Clock) -> None:
        self.audit = audit
        self.clock = clock

    def __call__(self, event: str, outcome: Outcome, reason: str, *, username: str,
                 meta: RequestMeta, **detail: str) -> None:
        self.audit.record(AuditEvent(
            event=event, outcome=outcome, reason=reason, username=username,
            client_ip=meta.client_ip, user_agent=meta.user_agent, request_id=meta.request_id,
            detail=tuple(sorted(detail.items()))))
