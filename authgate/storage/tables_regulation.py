"""Tables for brute-force regulation: counters, bans, familiar IPs, failed-password hashes.

Integer microseconds for times (``timeconv``). Subjects are strings such as ``user:alice``,
``userip:alice|10.0.0.7``, ``ip:203.0.113.9``, ``pw:<hmac>``, ``factor:alice``.
"""
from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, SmallInteger, String, Table

from authgate.storage.tables import metadata

#: One row per account name tried: the mirror of AD's failure chain, and the row every
#: attempt for that account locks first (so checks and reservations are serialised).
regulation_users = Table(
    "regulation_users", metadata,
    Column("username", String(256), primary_key=True),
    Column("chain", Integer, nullable=False),  # failed binds forwarded in the current chain
    Column("chain_unfamiliar", Integer, nullable=False),  # of which from unfamiliar IPs
    Column("pending", Integer, nullable=False),  # binds admitted, outcome not yet recorded
    Column("chain_at", BigInteger, nullable=False),  # last forwarded attempt (µs)
)

#: One row per subject: the lock row for its counter and its (escalating) ban.
regulation_subjects = Table(
    "regulation_subjects", metadata,
    Column("subject", String(320), primary_key=True),
    Column("ban_until", BigInteger, nullable=True),
    Column("ban_level", Integer, nullable=False),
    Column("ban_reason", String(64), nullable=False),
    Column("banned_at", BigInteger, nullable=True),
    Column("seen_at", BigInteger, nullable=False),
)

#: Failed (or in-flight) attempts: the sliding window is a count over ``at``.
regulation_events = Table(
    "regulation_events", metadata,
    Column("attempt", String(32), primary_key=True),
    Column("subject", String(320), primary_key=True),
    Column("username", String(256), nullable=False),
    Column("ip", String(64), nullable=False),
    Column("at", BigInteger, nullable=False),
    Index("ix_regulation_events_subject_at", "subject", "at"),
)

#: IPs the user signed in from successfully (smart lockout).
regulation_familiar = Table(
    "regulation_familiar", metadata,
    Column("username", String(256), primary_key=True),
    Column("ip", String(64), primary_key=True),
    Column("last_success", BigInteger, nullable=False),
)

#: HMAC-SHA256 of recently failed passwords, never the password (repeat and spray detection).
regulation_passwords = Table(
    "regulation_passwords", metadata,
    Column("username", String(256), primary_key=True),
    Column("mac", String(64), primary_key=True),
    Column("seen_at", BigInteger, nullable=False),
    Index("ix_regulation_passwords_mac", "mac", "seen_at"),
)

#: One verifier per account of the last password Active Directory accepted (issue 15
#: finding 6): argon2id over HMAC-SHA256 under a pepper that is not in the database, with
#: the ``pwdLastSet`` stamp it was accepted under. Never the password.
regulation_verifiers = Table(
    "regulation_verifiers", metadata,
    Column("username", String(256), primary_key=True),
    Column("verifier", String(256), nullable=False),  # argon2id PHC string
    Column("password_stamp", String(64), nullable=False),  # pwdLastSet when AD accepted it
    Column("set_at", BigInteger, nullable=False),  # µs
    Column("prefilter", SmallInteger, nullable=True),  # 6 bits of a keyed hash (0008)
)
