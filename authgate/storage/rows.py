"""Typed rows the factor stores hand out and take in: frozen values, never positional tuples,
so a reader sees which field is which and a column added later cannot shift the others."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class CredentialRow:
    """A TOTP or WebAuthn credential. TOTP secrets are ciphertext (``core.secretbox``)."""

    id: str
    username: str
    kind: str
    name: str
    active: bool
    created_at: datetime
    last_used_at: datetime | None
    secret: str | None = None
    last_step: int | None = None
    credential_id: str | None = None
    public_key: str | None = None
    sign_count: int = 0
    aaguid: str = ""
    transports: str = ""
    user_verified: bool = False


@dataclass(frozen=True)
class SealedSecret:
    """One encrypted TOTP seed with the fields its associated data binds it to (rotation)."""

    id: str
    username: str
    secret: str


@dataclass(frozen=True)
class RecoveryCodeRow:
    """An unused recovery code: its id and its argon2id hash (never the code)."""

    id: str
    code_hash: str


@dataclass(frozen=True)
class EnrolmentCodeRow:
    id: str
    username: str
    issued_by: str
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True)
class ChallengeRow:
    """A taken WebAuthn challenge: who asked for it ("" for a passkey) and the b64url value."""

    username: str
    challenge: str
