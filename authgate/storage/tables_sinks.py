"""SIEM delivery cursors (issue 16 item 7): one row per sink, the database being the record
of what each SIEM destination has received.

``last_id`` is the last audit record the sink accepted; delivery resumes after it following an
outage or a restart. ``owner`` and ``lease_until`` make one process at a time the sink's
deliverer (taken and renewed by a conditional UPDATE, so two workers or instances never both
send); a lease that runs out lets another take over.
"""
from __future__ import annotations

from sqlalchemy import BigInteger, Column, String, Table

from authgate.storage.tables import metadata

audit_sink_cursors = Table(
    "audit_sink_cursors", metadata,
    Column("sink", String(1024), primary_key=True),
    Column("last_id", BigInteger, nullable=False),
    Column("last_ts", BigInteger, nullable=False),  # µs: the ts of that last record
    Column("updated_at", BigInteger, nullable=False),  # µs: when the cursor last moved
    Column("owner", String(160), nullable=False),  # host:pid:random of the deliverer
    Column("lease_until", BigInteger, nullable=False),  # µs; 0: free
)
