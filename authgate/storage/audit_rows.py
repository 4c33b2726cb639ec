"""The audit trail's row types and its one field list.

The column order of ``audit_events`` *is* the hash chain's canonical field order
(``audit.chain.FIELDS``): it is defined here, once, because storage sits below audit in
the layers and both need it. Rows that a caller handles one at a time are ``NamedTuple``s
(named access, still tuples for the sinks and renderers). The bulk streams of
verification and export (a million rows, a few µs each) stay plain DBAPI tuples: wrapping
each costs 0.4 µs, a tenth of an export's budget; their layout is named by a type alias
and by the ``*_FIELDS`` constants, and their consumers unpack them by name.
"""
from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal, NamedTuple

from authgate.core.values import AuditEvent, Outcome, StoredAuditEvent
from authgate.storage.timeconv import from_micros


class AuditRow(NamedTuple):
    """One stored record: ``id``, the sealed fields in canonical order, its ``mac``."""

    id: int
    v: int
    chain_id: str
    seq: int
    key_id: str
    prev: str
    ts: int
    event: str
    outcome: str
    reason: str
    username: str
    client_ip: str
    user_agent: str
    host: str
    path: str
    method: str
    rule_id: str
    policy_digest: str
    request_id: str
    detail: str
    mac: str


#: every column of a stored row, in ``AuditRow`` order
ROW_COLUMNS: tuple[str, ...] = AuditRow._fields
#: the sealed fields in canonical order (``audit.chain.FIELDS``): all but ``id`` and ``mac``
SEALED_FIELDS: tuple[str, ...] = ROW_COLUMNS[1:-1]
#: the integer columns; every other column is text
INT_COLUMNS = ("id", "v", "seq", "ts")
#: the largest id either database can hold (a signed 64-bit integer): "to the end"
MAX_ID = 2**63 - 1

#: a row of ``AuditRow`` layout as the bulk reads hand it over (not wrapped; see the module)
RawAuditRow = tuple[Any, ...]
#: ``stream_sealed``: what verification reads, the sealed text rendered by the database
#: (bytes for format version 2, text for version 1 and for a version 2 record of the event
#: the reader named, None if a sealed field is NULL)
SEALED_ROW_FIELDS = ("id", "seq", "mac", "chain_id", "key_id", "prev", "sealed")
SealedRow = tuple[int, int, str, str, str, str, "bytes | str | None"]
#: ``rendered_batches``: an export line rendered by the database, text as UTF-8 bytes
RENDERED_ROW_FIELDS = {"csv": ("id", "ts", "mac", "body", "detail"),
                       "jsonl": ("id", "ts", "body")}  # the MAC is in a JSON line's body
RenderedRow = tuple[Any, ...]

ExportFormat = Literal["csv", "jsonl"]


class ChainHead(NamedTuple):
    """A chain's last record: where the next one links."""

    seq: int
    mac: str


class PurgePoint(NamedTuple):
    """Per chain, the last record a retention cut removes."""

    chain_id: str
    id: int
    seq: int
    mac: str


class CheckpointRow(NamedTuple):
    """One stored signed checkpoint (``audit.checkpoints.Checkpoint`` takes the same)."""

    seq: int
    ts: int
    kind: str
    key_id: str
    payload: str
    signature: str


@dataclass(frozen=True)
class AuditFilter:
    """What an auditor asks for; an empty criterion matches everything."""

    since: datetime | None = None
    until: datetime | None = None
    username: str = ""
    host: str = ""
    event: str = ""
    outcome: str = ""

    def text_criteria(self) -> tuple[tuple[str, str], ...]:
        """The text criteria as (column, value), matched by equality; "" matches all."""
        return (("username", self.username), ("host", self.host), ("event", self.event),
                ("outcome", self.outcome))

    def as_dict(self) -> dict[str, str]:
        out = dict(self.text_criteria())
        for k, when in (("since", self.since), ("until", self.until)):
            out[k] = when.isoformat() if when else ""
        return out


@dataclass(frozen=True)
class DayCounts:
    """One day of the auditor's summary."""

    day: date
    sign_ins: int
    failures: int
    denials: int
    bans: int


@dataclass(frozen=True)
class FailingSource:
    """A client address with failed sign-ins, for the auditor's summary."""

    client_ip: str
    failures: int
    users: int
    last_seen: datetime


@dataclass(frozen=True)
class ReportOnlyCount:
    """What one report-only rule would have done (``would_deny``, ``would_step_up``...) in
    the period: how often, for how many people, when last (issue 19 item 3)."""

    rule_id: str
    would: str
    requests: int
    users: int
    last_seen: datetime


def stored_event(row: AuditRow) -> StoredAuditEvent:
    """A stored row as the model's ``StoredAuditEvent`` (its ``detail`` parsed)."""
    when = from_micros(row.ts)
    event = AuditEvent(
        event=row.event, outcome=Outcome(row.outcome), reason=row.reason,
        username=row.username, client_ip=row.client_ip, user_agent=row.user_agent,
        host=row.host, path=row.path, method=row.method, rule_id=row.rule_id,
        policy_digest=row.policy_digest, request_id=row.request_id,
        detail=tuple(sorted(json.loads(row.detail).items())), time=when,
    )
    return StoredAuditEvent(id=row.id, time=when, event=event)


#: ``json.dumps(..., sort_keys=True, ensure_ascii=True)`` builds an encoder on every call
#: (any non-default option does); one encoder, made once, gives the same text
_DETAIL_JSON = json.JSONEncoder(sort_keys=True, ensure_ascii=True)


@functools.lru_cache(maxsize=512)
def detail_json(detail: tuple[tuple[str, str], ...]) -> str:
    """The stored (and sealed) form of ``detail``: sorted keys, ASCII, no control chars.
    Cached: most records carry one of a few details (``level=mfa``, ...)."""
    return _DETAIL_JSON.encode(dict(detail))
