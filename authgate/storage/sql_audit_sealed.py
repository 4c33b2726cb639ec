"""The sealed text of a stored record, rendered by the database (``SqlAuditStore.
stream_sealed``): one value per row for verification to hash instead of nineteen.

Version 2 texts come as bytes, the bytes the MAC covers, except those of the records whose
``event`` is the caller's ``text_event``, which come as text: their type tells the verifier
which records to read beyond their MAC (an ``audit.checkpoint`` names its checkpoint), where
a search of every record's bytes for the name cost a tenth of a million-record check.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from authgate.storage.audit_rows import SEALED_FIELDS

#: an event name as a SQL literal: dotted lower-case words only (nothing to escape)
_EVENT_NAME = re.compile(r"[a-z][a-z0-9_.]*")


def _joined_sql(parts: Sequence[str], sep: str) -> str:
    """SQLite ``||`` over ``parts`` with ``sep`` between, in groups of four (one long chain
    copies its growing result at every step). Unlike ``printf``, ``||`` keeps every byte of
    a value (a NUL too) and is NULL when any value is NULL."""
    glue = f" || {sep} || "
    return glue.join(f"({glue.join(parts[i:i + 4])})" for i in range(0, len(parts), 4))


def canonical_sql(*, sqlite: bool, blob_safe: bool = False, text_event: str = "") -> str:
    """SQL for a row's sealed text in the canonical form its ``v`` names (``audit.chain``).

    SQLite: version 2 is ``json_array`` of the fields as a BLOB (Python gets the bytes to
    hash, undecoded), as TEXT when ``event`` is ``text_event`` (see the module); version 1
    is TEXT, each value as text with U+001F between, NULL when any value is NULL (``||``).
    PostgreSQL: both are text, version 2 built from ``to_json`` of each field (a NULL drops
    an element, version 1's ``concat_ws`` a separator: either changes the text), followed by
    whether it is version 2 and whether its event is ``text_event``; ``stream_sealed``
    encodes the other version 2 texts. ``json_array`` refuses a BLOB and Python cannot
    decode text that is not UTF-8 (no writer stores either): ``blob_safe`` reads a BLOB as
    NULL and both versions as bytes, followed by the same two flags (``safe_row`` decodes
    them), so the record fails its MAC instead of the read failing."""
    names = ", ".join(SEALED_FIELDS)
    marked = _event_is(text_event)
    if sqlite:
        if not blob_safe:
            v1 = _joined_sql(SEALED_FIELDS, "char(31)")
            v2 = f"CAST(json_array({names}) AS BLOB)"
            if text_event:
                v2 = f"iif({marked}, json_array({names}), {v2})"
            return f"CASE v WHEN 2 THEN {v2} ELSE {v1} END"
        safe = [f"iif(typeof({n}) = 'blob', NULL, {n})" for n in SEALED_FIELDS]
        v1 = f"CAST({_joined_sql(safe, 'char(31)')} AS BLOB)"
        return (f"CASE v WHEN 2 THEN CAST(json_array({', '.join(safe)}) AS BLOB) "
                f"ELSE {v1} END, v = 2, {marked}")
    v2 = "concat_ws(',', " + ", ".join(f"to_json({n})" for n in SEALED_FIELDS) + ")"
    return (f"CASE WHEN v = 2 THEN '[' || {v2} || ']' "
            f"ELSE concat_ws(chr(31), {names}) END, v = 2, {marked}")


def _event_is(text_event: str) -> str:
    """SQL that is true for a record whose ``event`` is ``text_event`` (false without one)."""
    if not text_event:
        return "1 = 0"
    if not _EVENT_NAME.fullmatch(text_event):
        raise ValueError(f"not an event name: {text_event!r}")
    return f"event = '{text_event}'"


def as_bytes(column: str) -> str:
    """SQLite: a text value as a BLOB (Python's sqlite3 fails the whole query on text that
    is not UTF-8, which no writer stores but an insider can); other values as they are."""
    return f"iif(typeof({column}) = 'text', CAST({column} AS BLOB), {column})"


#: ``stream_sealed``'s columns beside the sealed text, for the ``blob_safe`` fallback
SAFE_CHAIN_COLUMNS = "id, " + ", ".join(map(as_bytes, ("seq", "mac", "chain_id", "key_id",
                                                       "prev")))


def decoded(value: Any) -> Any:
    """Bytes read by ``as_bytes`` back as text; left as bytes when not UTF-8 (the record
    then fails its checks as a value of the wrong type)."""
    if type(value) is bytes:
        try:
            return value.decode()
        except UnicodeDecodeError:
            return value
    return value


def safe_row(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """A ``blob_safe`` row as ``stream_sealed`` hands rows over: text columns as text
    (``seq`` stays as read: text there is damage), version 1 as text (None when it is not
    UTF-8), version 2 as bytes, or as text if its event is the ``text_event`` (as bytes
    when it is not UTF-8: no writer's record, so it fails its MAC)."""
    rid, seq, mac, chain_id, key_id, prev, sealed, v2, marked = row
    if sealed is not None and (v2 != 1 or marked == 1):
        sealed = decoded(sealed)
        sealed = sealed if type(sealed) is str or v2 == 1 else None
    return (rid, seq, decoded(mac), decoded(chain_id), decoded(key_id), decoded(prev),
            sealed)


def sealed_rows(rows: list[tuple[Any, ...]], *, sqlite: bool) -> list[tuple[Any, ...]]:
    """A batch as ``stream_sealed`` hands it over: SQLite's as read (``safe_row`` for the
    ``blob_safe`` fallback's); PostgreSQL's version 2 texts as bytes but for ``text_event``."""
    if sqlite:
        return list(map(safe_row, rows)) if len(rows[0]) == 9 else rows
    return [(*r[:6], r[6].encode() if r[7] and not r[8] and r[6] is not None else r[6])
            for r in rows]
