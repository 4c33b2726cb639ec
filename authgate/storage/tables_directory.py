"""The service-bind circuit (issue 15): one row per (service account, password fingerprint).

A fingerprint is an HMAC of the password under a server key, never the password. A row per
fingerprint (not one per account) keeps a refused password refused even while another
instance binds with a good one, so two instances with different passwords never take turns
spending AD failures.
"""
from __future__ import annotations

from sqlalchemy import BigInteger, Column, String, Table

from authgate.storage.tables import metadata

service_binds = Table(
    "service_binds", metadata,
    Column("bind_dn", String(512), primary_key=True),
    Column("fingerprint", String(64), primary_key=True),
    Column("state", String(16), nullable=False),  # trying | ok | refused
    Column("code", String(16), nullable=False),  # AD's ``data XXX`` sub-code when refused
    Column("detail", String(300), nullable=False),
    Column("changed_at", BigInteger, nullable=False),  # µs
    Column("lease_until", BigInteger, nullable=False),  # µs; a trial after it is abandoned
)
