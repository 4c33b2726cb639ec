"""One stored row (``storage.audit_rows.AuditRow`` layout) as JSON or CSV text, fast.

Shared by exports and SIEM sinks. Fields were neutralised when the event was made
(``model.neutralise``: no control character or line separator survives, ASVS 7.3.1), so a
JSON line can never be split; CSV cells that a spreadsheet would run as a formula are
neutralised here (OWASP "CSV injection").
"""
from __future__ import annotations

import json
import re
import time
import zlib
from array import array
from collections.abc import Sequence
from json.encoder import encode_basestring
from typing import Any

from authgate.storage.audit_rows import (
    INT_COLUMNS,
    ROW_COLUMNS,
    RawAuditRow,
    RenderedRow,
)

#: exported columns: the stored row plus a readable UTC time after ``id``
EXPORT_COLUMNS = ("id", "time", *ROW_COLUMNS[1:])
_INTS = frozenset(INT_COLUMNS)
_JSON_TEMPLATE = "{" + ",".join(
    f'"{name}":%d' if name in _INTS else f'"{name}":%s' for name in EXPORT_COLUMNS) + "}"
_TIME_INDEX = ROW_COLUMNS.index("ts")
#: a leading character that makes a spreadsheet evaluate a cell (and ``'``, the escape)
FORMULA_START = frozenset("=+-@\t\r'")
_TEXT_INDEXES = tuple(i for i, name in enumerate(EXPORT_COLUMNS) if name not in _INTS)
_INT_INDEXES = tuple(i for i, name in enumerate(EXPORT_COLUMNS) if name in _INTS)


class _TimeText:
    """ISO 8601 UTC text for integer microseconds, caching the whole-second part. The cache
    is one tuple, replaced whole: threads sharing ``iso_time`` never pair one second with
    another's text."""

    def __init__(self) -> None:
        self._cache = (-1, "")

    def __call__(self, micros: int) -> str:
        second, frac = divmod(micros, 1_000_000)
        return f"{self.prefix(second)}.{frac:06d}Z"

    def prefix(self, second: int) -> str:
        """``YYYY-MM-DDTHH:MM:SS`` of a second since the epoch."""
        cached = self._cache
        if cached[0] != second:
            cached = self._cache = (second, time.strftime("%Y-%m-%dT%H:%M:%S",
                                                          time.gmtime(second)))
        return cached[1]


iso_time = _TimeText()


def export_values(row: Sequence[Any], when: _TimeText = iso_time) -> list[Any]:
    """The row with the readable time inserted: ``EXPORT_COLUMNS`` order (no time for a
    ``ts`` that is not an integer: an edited row, which verification reports)."""
    ts = row[_TIME_INDEX]
    return [row[0], when(ts) if type(ts) is int else "", *row[1:]]


def json_line(row: Sequence[Any], when: _TimeText = iso_time) -> str:
    """One JSON object, keys in ``EXPORT_COLUMNS`` order, no newline."""
    values = export_values(row, when)
    try:
        for i in _INT_INDEXES:  # ``%d`` would print an edited 5.5 as 5, an intact-looking 5
            if type(values[i]) is not int:
                raise TypeError(EXPORT_COLUMNS[i])
        for i in _TEXT_INDEXES:
            values[i] = encode_basestring(values[i])
        return _JSON_TEMPLATE % tuple(values)
    except TypeError:  # a value of another type than the schema's (an edited row)
        return json.dumps(dict(zip(EXPORT_COLUMNS, export_values(row, when), strict=True)),
                          ensure_ascii=False, separators=(",", ":"), default=str)


CSV_HEADER = ",".join(EXPORT_COLUMNS) + "\r\n"


def csv_cell(text: str) -> str:
    """A free-text cell: formula start neutralised with ``'`` (and ``'`` itself, so the
    escaping is reversible), always quoted (RFC 4180)."""
    if text[:1] in FORMULA_START:
        text = "'" + text
    return '"' + text.replace('"', '""') + '"'


def csv_line(row: Sequence[Any], when: _TimeText = iso_time) -> str:
    """One RFC 4180 record with CRLF: integers bare, every text cell quoted and neutralised
    (``csv_cell``). Stored text never holds CR or LF (neutralised), so one record is one
    physical line."""
    values = export_values(row, when)
    return ",".join([str(v) if type(v) is int else csv_cell(v if type(v) is str else str(v))
                     for v in values]) + "\r\n"


def row_from_export(values: dict[str, Any]) -> RawAuditRow:
    """An exported record (JSON object or unescaped CSV cells) back to a stored row."""
    return tuple(int(values[n]) if n in _INTS else values[n] for n in ROW_COLUMNS)


# -- lines from database-rendered rows (``storage.sql_audit_lines``): the same text, fast ----
#: in a line of ``csv_lines``: a cell that would need the formula escape (every text cell is
#: quoted and a quote inside one is doubled, so ``,"`` and a formula start opens one), or a
#: bare null (a NULL in a text column; in ``v`` or ``seq`` the SQL gives no body); one
#: scan for both
_NEEDS_CSV_LINE = re.compile(b',(?:"[' + re.escape("".join(sorted(FORMULA_START)).encode())
                             + b']|null)')
_QUOTE, _QUOTES = b'"', b'""'
_SECOND = 1_000_000
#: ``RenderedRow``s, text as UTF-8 bytes: (id, ts, mac, body, detail) for CSV, (id, ts,
#: body) for JSON lines
Rendered = Sequence[RenderedRow]
#: a batch's lines, UTF-8, each ending in ``\n``, and the CRC-32 of each line without its
#: ``\n`` (the manifest's ``line_crc32``): taken from the lines as they are made, where
#: splitting the text again cost a tenth of an export
Lines = tuple[bytes, "array[int]"]


def csv_lines(batch: Rendered, when: _TimeText = iso_time) -> Lines | None:
    """``csv_line`` of every row of the batch, or None when the batch needs what only
    ``csv_line`` does (the caller renders it so). The body is the JSON array of the columns
    from ``v`` to ``request_id``: with no backslash in it no string needed escaping, so each
    ``"text"`` is already its CSV cell and each integer its bare cell. A ``detail`` cell is
    made (and checked) once per distinct detail: most records carry one of a few."""
    try:
        bodies = b"".join([body for _id, _ts, _mac, body, _detail in batch])
        macs = b"".join([mac for _id, _ts, mac, _body, _detail in batch])
    except TypeError:  # a NULL mac or body (the schema forbids them): ``csv_line``'s
        return None
    if b"\\" in bodies or any(c in macs for c in (b'"', b"\r", b"\n")):
        return None  # a string JSON escaped; a MAC that is no plain cell
    lines, lo, hi, prefix = [], 0, 0, b""
    cells: dict[bytes, bytes] = {}
    for rid, ts, mac, body, detail in batch:  # ``when`` inlined: a third of the loop
        if type(ts) is not int:
            return None
        if not lo <= ts < hi:  # a new second
            lo = ts - ts % _SECOND
            hi, prefix = lo + _SECOND, when.prefix(lo // _SECOND).encode()
        cell = cells.get(detail)
        if cell is None:  # (JSON escapes a line break in the body; the time has none)
            if type(detail) is not bytes or b"\r" in detail or b"\n" in detail:
                return None
            cell = cells[detail] = detail.replace(_QUOTE, _QUOTES)
        lines.append(b'%d,"%s.%06dZ",%s,"%s","%s"\r' % (
            rid, prefix, ts - lo, body[1:-1], cell, mac))
    return _joined(lines, csv=True)


def json_lines(batch: Rendered, when: _TimeText = iso_time) -> Lines | None:
    """``json_line`` of every row of the batch; None for a batch with no body for a row, or
    a ``ts`` that is not an integer (the caller renders it from whole rows)."""
    lines, lo, hi, prefix = [], 0, 0, b""
    for rid, ts, body in batch:
        if type(ts) is not int or body is None:
            return None
        if not lo <= ts < hi:
            lo = ts - ts % _SECOND
            hi, prefix = lo + _SECOND, when.prefix(lo // _SECOND).encode()
        lines.append(b'{"id":%d,"time":"%s.%06dZ",%s' % (rid, prefix, ts - lo, body[1:]))
    return _joined(lines, csv=False)


def _joined(lines: list[bytes], *, csv: bool) -> Lines | None:
    """The lines (none holds a line break: JSON escapes it, and ``csv_lines`` checked the
    rest) joined, each ending in ``\n``, with their CRC-32s; None if the text needs the
    reference (a CSV cell to neutralise, bytes that are not UTF-8)."""
    lines.append(b"")
    text = b"\n".join(lines)
    lines.pop()
    if (csv and _NEEDS_CSV_LINE.search(text)) or not _utf8(text):
        return None
    return text, array("I", map(zlib.crc32, lines))


def _utf8(data: bytes) -> bool:
    """Whether SQLite's bytes are UTF-8 (text a hand edit cast from a BLOB may not be; the
    reference path then fails on it as the database driver does)."""
    if data.isascii():
        return True
    try:
        data.decode()
    except UnicodeDecodeError:
        return False
    return True
