"""Time-based one-time passwords (RFC 6238, built on HOTP, RFC 4226) via pyotp.

Pure: the time is a parameter and the caller stores the last accepted time step per
credential. Each time step is accepted at most once (RFC 6238 §5.2, NIST 63B §5.1.4.2,
ASVS 2.8.4): a code for any step at or before the last accepted one is refused as a replay,
including a still-valid code from step N-1 after step N was accepted.

A typed OTP is never phishing resistant (NIST 63B §5.2.5); the policy layer decides that.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import pyotp

from authgate.factors.errors import CodeReplayed, InvalidCode, InvalidSecret

#: RFC 6238 §1.2 allows HMAC-SHA-1, -256 and -512.
ALGORITHMS: Final[dict[str, Callable[..., Any]]] = {
    "SHA1": hashlib.sha1,
    "SHA256": hashlib.sha256,
    "SHA512": hashlib.sha512,
}
#: RFC 4226 §5.3: at least 6 digits; authenticator apps support at most 8.
MIN_DIGITS: Final = 6
MAX_DIGITS: Final = 8
#: 160 bits, the HMAC-SHA-1 output size recommended by RFC 4226 §4 (R6).
SECRET_BYTES: Final = 20
#: pyotp refuses shorter secrets; NIST 63B §5.1.4.1 asks for at least 112 bits.
MIN_SECRET_BYTES: Final = 14


@dataclass(frozen=True, slots=True)
class VerifiedTotp:
    """A code was accepted. Store ``time_step`` as the credential's last accepted step."""

    time_step: int
    #: accepted step minus the current step (-valid_window..+valid_window); clock drift
    drift: int


def new_totp_secret() -> str:
    """A fresh 160-bit shared secret, base32 without padding, as authenticator apps expect."""
    return base64.b32encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii").rstrip("=")


def provisioning_uri(*, secret: str, account_name: str, issuer: str, digits: int = 6,
                     period: int = 30, algorithm: str = "SHA1") -> str:
    """The ``otpauth://totp/...`` URI shown as a QR code at enrolment (Key Uri Format).

    Non-default digits/period/algorithm are included; many apps ignore them, so the defaults
    (6 digits, 30 s, SHA-1) are the interoperable choice.
    """
    totp = _totp(secret, digits=digits, period=period, algorithm=algorithm)
    return totp.provisioning_uri(name=account_name, issuer_name=issuer)


def time_step_at(now: datetime, *, period: int = 30) -> int:
    """RFC 6238 §4.2: T = floor((unix time - T0) / X) with T0 = 0."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if period <= 0:
        raise ValueError("period must be positive")
    return int(now.timestamp()) // period


def verify_totp(*, secret: str, code: str, now: datetime, last_accepted_step: int | None,
                digits: int = 6, period: int = 30, algorithm: str = "SHA1",
                valid_window: int = 1) -> VerifiedTotp:
    """Accept ``code`` if it matches a step within ±``valid_window`` of ``now`` (RFC 6238 §5.2)
    that is later than ``last_accepted_step``.

    Raises :class:`InvalidCode` (malformed or wrong), :class:`CodeReplayed` (right code for a
    step already used, or older than one used) or :class:`InvalidSecret`. Every candidate in
    the window is compared with ``hmac.compare_digest``, without an early exit.
    """
    if not 0 <= valid_window <= 10:
        raise ValueError("valid_window must be between 0 and 10")
    totp = _totp(secret, digits=digits, period=period, algorithm=algorithm)
    candidate = _normalise(code, digits)
    current = time_step_at(now, period=period)
    matches = [step for step in range(max(current - valid_window, 0), current + valid_window + 1)
               if hmac.compare_digest(totp.generate_otp(step).encode(), candidate)]
    if not matches:
        raise InvalidCode()
    fresh = [step for step in matches if last_accepted_step is None or step > last_accepted_step]
    if not fresh:
        raise CodeReplayed()
    step = min(fresh)
    return VerifiedTotp(time_step=step, drift=step - current)


def _normalise(code: str, digits: int) -> bytes:
    """Digits only, exactly ``digits`` long; spaces (as apps display "123 456") are dropped.

    Anything else is refused before any HMAC is computed.
    """
    if not isinstance(code, str) or len(code) > 4 * MAX_DIGITS:
        raise InvalidCode(detail="malformed code")
    compact = "".join(code.split())
    if len(compact) != digits or not (compact.isascii() and compact.isdigit()):
        raise InvalidCode(detail="malformed code")
    return compact.encode("ascii")


def _totp(secret: str, *, digits: int, period: int, algorithm: str) -> pyotp.TOTP:
    if not MIN_DIGITS <= digits <= MAX_DIGITS:
        raise ValueError(f"digits must be between {MIN_DIGITS} and {MAX_DIGITS}")
    if period <= 0:
        raise ValueError("period must be positive")
    digest = ALGORITHMS.get(algorithm.upper())
    if digest is None:
        raise ValueError(f"algorithm must be one of {sorted(ALGORITHMS)}")
    try:
        return pyotp.TOTP(secret, digits=digits, digest=digest, interval=period)
    except (ValueError, TypeError, binascii.Error):
        # pyotp decodes the secret at construction; ``from None`` so no trace can echo it.
        raise InvalidSecret(detail="stored TOTP secret is not base32 of >= 112 bits") from None
