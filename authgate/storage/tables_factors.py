"""Tables for second factors, recovery codes, enrolment codes and one-time challenges."""
from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Index, String, Table, Text

from authgate.storage.tables import metadata

credentials = Table(
    "credentials", metadata,
    Column("id", String(32), primary_key=True),  # random, shown in URLs
    Column("username", String(256), nullable=False),
    Column("kind", String(16), nullable=False),  # totp | webauthn
    Column("name", String(64), nullable=False),
    Column("active", Boolean, nullable=False),  # TOTP waits for its first valid code
    Column("created_at", BigInteger, nullable=False),
    Column("last_used_at", BigInteger, nullable=True),
    Column("secret", Text, nullable=True),  # TOTP seed, AES-GCM (secretbox), never plain
    Column("last_step", BigInteger, nullable=True),  # last accepted TOTP step (replay)
    Column("credential_id", String(1400), nullable=True, unique=True),  # WebAuthn, b64url
    Column("public_key", Text, nullable=True),  # COSE key, b64url
    Column("sign_count", BigInteger, nullable=False),
    Column("aaguid", String(36), nullable=False),
    Column("transports", String(128), nullable=False),
    Column("user_verified", Boolean, nullable=False),
    Index("ix_credentials_username", "username"),
)

recovery_codes = Table(
    "recovery_codes", metadata,
    Column("id", String(32), primary_key=True),
    Column("username", String(256), nullable=False),
    Column("code_hash", String(256), nullable=False),  # argon2id
    Column("created_at", BigInteger, nullable=False),
    Column("used_at", BigInteger, nullable=True),
    Index("ix_recovery_codes_username", "username"),
)

enrolment_codes = Table(
    "enrolment_codes", metadata,
    Column("id", String(32), primary_key=True),
    Column("username", String(256), nullable=False),
    Column("code_hash", String(64), nullable=False, unique=True),  # HMAC-SHA256, keyed
    Column("issued_by", String(256), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("used_at", BigInteger, nullable=True),
    Column("revoked_at", BigInteger, nullable=True),
    Index("ix_enrolment_codes_username", "username"),
)

challenges = Table(
    "challenges", metadata,
    Column("id_hash", String(64), primary_key=True),  # sha256 of the handle in the session
    Column("purpose", String(32), nullable=False),
    Column("username", String(256), nullable=False),
    Column("challenge", String(128), nullable=False),  # b64url
    Column("expires_at", BigInteger, nullable=False),
)
