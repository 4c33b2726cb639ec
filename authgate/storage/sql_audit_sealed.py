"""The sealed text of a stored record, rendered by the database (``SqlAuditStore.
stream_sealed``): one value per row for verification to hash instead of nineteen."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from authgate.storage.audit_rows import SEALED_FIELDS


def _joined_sql(parts: Sequence[str], sep: str) -> str:
    """SQLite ``||`` over ``parts`` with ``sep`` between, in groups of four (one long chain
    copies its growing result at every step). Unlike ``printf``, ``||`` keeps every byte of
    a value (a NUL too) and is NULL when any value is NULL."""
    glue = f" || {sep} || "
    return glue.join(f"({glue.join(parts[i:i + 4])})" for i in range(0, len(parts), 4))


def canonical_sql(*, sqlite: bool, blob_safe: bool = False) -> str:
    """SQL for a row's sealed text in the canonical form its ``v`` names (``audit.chain``).

    SQLite: version 2 is ``json_array`` of the fields as a BLOB (Python gets the bytes to
    hash, undecoded); version 1 is TEXT, each value as text with U+001F between, NULL when
    any value is NULL (``||``). PostgreSQL: both are text, version 2 built from ``to_json``
    of each field (a NULL drops an element, version 1's ``concat_ws`` a separator: either
    changes the text); ``stream_sealed`` encodes version 2's. ``json_array`` refuses a BLOB
    and Python cannot decode text that is not UTF-8 (no writer stores either):
    ``blob_safe`` reads a BLOB as NULL and version 1 as bytes (``stream_sealed`` decodes
    them, or gives None), so the record fails its MAC instead of the read failing."""
    names = ", ".join(SEALED_FIELDS)
    if sqlite:
        if not blob_safe:
            v1 = _joined_sql(SEALED_FIELDS, "char(31)")
            return f"CASE v WHEN 2 THEN CAST(json_array({names}) AS BLOB) ELSE {v1} END"
        safe = [f"iif(typeof({n}) = 'blob', NULL, {n})" for n in SEALED_FIELDS]
        v1 = f"CAST({_joined_sql(safe, 'char(31)')} AS BLOB)"
        return (f"CASE v WHEN 2 THEN CAST(json_array({', '.join(safe)}) AS BLOB) "
                f"ELSE {v1} END, v = 2")
    v2 = "concat_ws(',', " + ", ".join(f"to_json({n})" for n in SEALED_FIELDS) + ")"
    return (f"CASE WHEN v = 2 THEN '[' || {v2} || ']' "
            f"ELSE concat_ws(chr(31), {names}) END, v = 2")


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
    UTF-8), version 2 as bytes."""
    rid, seq, mac, chain_id, key_id, prev, sealed, v2 = row
    if v2 != 1 and sealed is not None:
        sealed = decoded(sealed)
        sealed = sealed if type(sealed) is str else None
    return (rid, seq, decoded(mac), decoded(chain_id), decoded(key_id), decoded(prev),
            sealed)
