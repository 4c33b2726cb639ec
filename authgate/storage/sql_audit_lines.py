"""Export lines rendered by SQLite itself: the fast path of ``audit.export``.

Decoding a row's 21 columns into Python objects costs more than an export's whole budget
(300,000 rows/s), so SQLite renders each row's columns after ``id`` as one text in the
layout of ``audit.render``, handed over as a BLOB (the UTF-8 bytes the file gets: nothing
is decoded and encoded again), and the caller adds ``id`` and the readable time:

* CSV, rows ``(id, ts, mac, body, detail)``: ``json_array(v, ..., request_id)``, which is
  the CSV text of those cells wherever no string needed escaping (a string is ``"text"``, an
  integer bare), and ``detail`` apart (it is JSON, so it has quotes, which the caller
  doubles: SQLite's ``replace`` would cost a sixth of the row). The caller checks each
  batch and has ``audit.render`` render any batch that needs what only it does. ``v`` and
  ``seq`` must be integers for their bare cells: one ``typeof(v + seq)`` tells (a REAL or
  NULL in either makes the sum no integer; text that is not a number counts as 0, and a
  text cell is rendered as the reference renders it), else the body is NULL; ``ts`` comes
  apart and the caller checks its type.
* JSON lines, rows ``(id, ts, body)``: ``json_object(...)`` of every column after ``id``,
  whose string escaping is Python's ``encode_basestring``; the MAC is in the body.

Both must equal ``audit.render`` line for line; the tests compare them on rows made to be
awkward. PostgreSQL exports are rendered by ``audit.render`` throughout.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Protocol

from authgate.storage.audit_rows import (
    MAX_ID,
    ROW_COLUMNS,
    ExportFormat,
    RenderedRow,
)


class BatchReader(Protocol):
    """What this module asks of ``SqlAuditStore`` (which calls it: no import back)."""

    is_sqlite: bool

    def batches(self, sql: str, params: Sequence[Any], *, after: int, batch: int,
                fallback: str | None = None) -> Iterator[list[tuple[Any, ...]]]: ...

Format = ExportFormat
_RENDERED = ROW_COLUMNS[1:]  # ``id`` and the time are the caller's
#: CSV: every column after ``id`` up to ``detail`` (``detail`` and ``mac`` come apart)
_CSV_BODY = _RENDERED[:_RENDERED.index("detail")]
assert _RENDERED[len(_CSV_BODY):] == ("detail", "mac")


def body_sql(fmt: Format) -> str:
    """SQL for what a row of ``fmt`` holds after ``id, ts``, text as BLOBs: the UTF-8 bytes
    the export writes, which Python neither decodes nor encodes."""
    if fmt == "jsonl":
        body = "json_object(" + ", ".join(f"'{name}', {name}" for name in _RENDERED) + ")"
        return f"CAST({body} AS BLOB)"
    return (f"CAST(mac AS BLOB), CASE typeof(v + seq) WHEN 'integer' THEN "
            f"CAST(json_array({', '.join(_CSV_BODY)}) AS BLOB) END, CAST(detail AS BLOB)")


def stream_bodies(store: BatchReader, where: Sequence[str], params: Sequence[Any], *,
                  fmt: Format, batch: int = 5000, first_id: int = 1,
                  last_id: int | None = None) -> Iterator[list[RenderedRow]]:
    """Batches of rows (see the module), text as UTF-8 bytes, for the rows matching the
    conditions ``where`` (``sql_audit.filter_clauses``) with ``first_id <= id <= last_id``,
    in id order (keyset on id: constant memory). A batch SQLite cannot render (a BLOB
    edited into a column: ``json_array`` refuses it) comes without bodies (NULL), which
    sends it to ``audit.render``'s whole-row rendering."""
    if not store.is_sqlite:
        raise ValueError("database-rendered export lines are SQLite's (PostgreSQL: records)")
    bodiless = "NULL" if fmt == "jsonl" else "NULL, NULL, NULL"
    sql, bodiless = (f"SELECT id, ts, {body} FROM audit_events "  # noqa: S608
                     f"WHERE {' AND '.join(['id > ?', 'id <= ?', *where])} ORDER BY id "
                     f"LIMIT {int(batch)}" for body in (body_sql(fmt), bodiless))
    end = MAX_ID if last_id is None else last_id
    return store.batches(sql, [end, *params], after=first_id - 1, batch=batch,
                         fallback=bodiless)
