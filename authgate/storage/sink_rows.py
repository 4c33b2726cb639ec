"""The SIEM delivery cursor's row (``tables_sinks``), as the stores hand it over."""
from __future__ import annotations

from datetime import datetime
from typing import NamedTuple


class SinkCursor(NamedTuple):
    """Where a sink stands: the last record it accepted, and who delivers to it until when."""

    sink: str
    last_id: int
    last_ts: datetime | None  # the time of that record; None before the first delivery
    updated_at: datetime
    owner: str
    lease_until: datetime
