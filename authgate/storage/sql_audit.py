"""``SqlAuditStore``: the audit trail in SQLite or PostgreSQL (append and query only)."""
from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, insert, select

from authgate.model import AuditEvent, Outcome, StoredAuditEvent
from authgate.storage.guard import storage_guard
from authgate.storage.tables import audit_events
from authgate.storage.timeconv import from_micros, to_micros

_BATCH = 1000


class SqlAuditStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._insert = insert(audit_events)

    def append(self, event: AuditEvent) -> int:
        if event.time is None:
            raise ValueError("an audit event needs its time before it is stored")
        with storage_guard(), self._engine.begin() as conn:
            result = conn.execute(self._insert, _row(event))
            return int(result.inserted_primary_key[0])

    def query(self, *, since: datetime | None = None, until: datetime | None = None,
              username: str | None = None, event: str | None = None,
              outcome: str | None = None, host: str | None = None, after_id: int = 0,
              limit: int | None = None) -> Iterator[StoredAuditEvent]:
        """Stream matching records in id order, a batch per query (constant memory)."""
        c = audit_events.c
        base = select(audit_events)
        for cond, clause in ((since, lambda: c.ts >= to_micros(since)),  # type: ignore[arg-type]
                             (until, lambda: c.ts < to_micros(until)),  # type: ignore[arg-type]
                             (username, lambda: c.username == username),
                             (event, lambda: c.event == event),
                             (outcome, lambda: c.outcome == outcome),
                             (host, lambda: c.host == host)):
            if cond is not None:
                base = base.where(clause())
        remaining = limit
        last = after_id
        while remaining is None or remaining > 0:
            size = _BATCH if remaining is None else min(_BATCH, remaining)
            with storage_guard(), self._engine.connect() as conn:
                rows = conn.execute(base.where(c.id > last).order_by(c.id).limit(size)
                                    ).mappings().all()
            for row in rows:
                yield _stored(row)
            if len(rows) < size:
                return
            last = rows[-1]["id"]
            if remaining is not None:
                remaining -= len(rows)


def _row(e: AuditEvent) -> dict[str, Any]:
    return {
        "ts": to_micros(e.time),  # type: ignore[arg-type]
        "event": e.event, "outcome": e.outcome.value, "reason": e.reason,
        "username": e.username, "client_ip": e.client_ip, "user_agent": e.user_agent,
        "host": e.host, "path": e.path, "method": e.method, "rule_id": e.rule_id,
        "policy_digest": e.policy_digest, "request_id": e.request_id,
        "detail": json.dumps(dict(e.detail), sort_keys=True, ensure_ascii=True),
    }


def _stored(row: Any) -> StoredAuditEvent:
    when = from_micros(row["ts"])
    event = AuditEvent(
        event=row["event"], outcome=Outcome(row["outcome"]), reason=row["reason"],
        username=row["username"], client_ip=row["client_ip"], user_agent=row["user_agent"],
        host=row["host"], path=row["path"], method=row["method"], rule_id=row["rule_id"],
        policy_digest=row["policy_digest"], request_id=row["request_id"],
        detail=tuple(sorted(json.loads(row["detail"]).items())), time=when,
    )
    return StoredAuditEvent(id=row["id"], time=when, event=event)
