"""Exports for auditors (ASVS 7.x): CSV or JSON lines, streamed in constant memory.

Rows are read in keyset batches and written a batch at a time; nothing holds the whole
result. The last line is a manifest signed with Ed25519 (RFC 8032): the filter and period,
the count, the first and last record's chain position (id, chain, seq, MAC, time), the
SHA-256 of every line before it, a CRC-32 per line (which locates an edit), the latest
signed checkpoint, and the signer's key id, so the signer's public key alone proves the
file is what authgate exported (``audit.export_offline``, also ``tools/verify-export.py``).
CSV cells that start like a formula are prefixed with ``'`` (spreadsheet injection); ``'``
itself too, so the escape is reversible.
"""
from __future__ import annotations

import base64
import hashlib
import json
import sys
import zlib
from array import array
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from authgate.audit.checkpoints import Checkpoint, Signer
from authgate.audit.export_offline import (
    MANIFEST_TYPE,
    canonical_manifest,
    manifest_line,
)
from authgate.audit.render import (
    CSV_HEADER,
    EXPORT_COLUMNS,
    _TimeText,
    csv_line,
    csv_lines,
    iso_time,
    json_line,
    json_lines,
)
from authgate.core.values import AuditEvent, Outcome
from authgate.storage.audit_rows import (
    AuditFilter,
    AuditRow,
    ExportFormat,
    RawAuditRow,
    RenderedRow,
)
from authgate.storage.interfaces import AuditStore

Format = ExportFormat
#: 2: ``line_crc32``, ``period`` and chain positions in ``first``/``last`` (issue 16)
MANIFEST_VERSION = 2
MEDIA_TYPES = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson"}


def line_crcs(chunk: bytes) -> array[int]:
    """CRC-32 of each ``\n``-terminated line of ``chunk`` (the ``\n`` excluded): they
    locate an edit; the SHA-256 of the lines is what proves them."""
    crcs = array("I", map(zlib.crc32, chunk.split(b"\n")))
    crcs.pop()  # what follows the last line break: nothing
    return crcs


def pack_crcs(crcs: array[int]) -> str:
    """The manifest's ``line_crc32``: base64 of the big-endian CRCs."""
    packed = array("I", crcs)
    if sys.byteorder == "little":
        packed.byteswap()
    return base64.b64encode(packed.tobytes()).decode()


def export_event(wanted: AuditFilter, fmt: Format, *, via: str, username: str,
                 client_ip: str = "", user_agent: str = "", request_id: str = "",
                 host: str = "", path: str = "") -> AuditEvent:
    """The ``audit.export`` record, written before the first byte leaves."""
    detail = tuple(sorted({**{f"filter_{k}": v for k, v in wanted.as_dict().items() if v},
                           "format": fmt, "via": via}.items()))
    return AuditEvent(event="audit.export", outcome=Outcome.SUCCESS, reason="export_started",
                      username=username, client_ip=client_ip, user_agent=user_agent,
                      host=host, path=path, method="GET" if via == "web" else "",
                      request_id=request_id, detail=detail)


def stream_export(store: AuditStore, wanted: AuditFilter, *, fmt: Format, signer: Signer,
                  generated_at: datetime, batch: int = 5000,
                  manifest: dict[str, Any] | None = None) -> Iterator[bytes]:
    """Yield the export (UTF-8) a batch at a time, manifest last (also copied into
    ``manifest`` when given)."""
    digest, crcs = hashlib.sha256(), array("I")
    count, first, last = 0, None, None
    if fmt == "csv":
        digest.update(CSV_HEADER.encode())
        crcs.extend(line_crcs(CSV_HEADER.encode()))
        yield CSV_HEADER.encode()
    for chunk, chunk_crcs, rows, head, tail in _batches(store, wanted, fmt, batch):
        first = first or head
        count, last = count + rows, tail
        digest.update(chunk)
        crcs.extend(chunk_crcs)
        yield chunk
    signed = _manifest(store, wanted, fmt=fmt, signer=signer, generated_at=generated_at,
                       count=count, first=first, last=last, rows_sha256=digest.hexdigest(),
                       crcs=crcs)
    if manifest is not None:
        manifest.update(signed)
    yield manifest_line(fmt, signed).encode()


#: UTF-8, the CRC-32 of each line, the rows, the first and last (``_row_end``)
Batch = tuple[bytes, "array[int]", int, dict[str, Any], dict[str, Any]]


def _batches(store: AuditStore, wanted: AuditFilter, fmt: Format, batch: int, *,
             span: tuple[int, int | None] = (1, None)) -> Iterator[Batch]:
    """The database renders the lines where it can (SQLite: ``rendered_batches``); a batch
    that needs CSV escaping, and every PostgreSQL batch, is rendered from whole rows in
    Python. ``span``: only ids ``first <= id <= last`` (one worker's share of a parallel
    export)."""
    when = _TimeText()
    first_id, last_id = span
    rendered_batches = store.rendered_batches(wanted, fmt=fmt, batch=batch,
                                              first_id=first_id, last_id=last_id)
    if rendered_batches is None:
        for rows in store.row_batches(wanted, after_id=first_id - 1, batch=batch,
                                      last_id=last_id):
            yield _from_rows(rows, fmt, when)
        return
    for rendered in rendered_batches:
        lines = csv_lines(rendered, when) if fmt == "csv" else json_lines(rendered, when)
        if lines is None:  # the same rows, whole (a retention purge may have taken them)
            rows = [row for rows in store.row_batches(wanted, after_id=rendered[0][0] - 1,
                                                      last_id=rendered[-1][0], batch=batch)
                    for row in rows]
            if rows:
                yield _from_rows(rows, fmt, when)
            continue
        yield (*lines, len(rendered), _rendered_end(rendered[0], fmt),
               _rendered_end(rendered[-1], fmt))


def _from_rows(rows: list[RawAuditRow], fmt: Format, when: _TimeText) -> Batch:
    line = csv_line if fmt == "csv" else _json_record
    text = "".join([line(row, when) for row in rows]).encode()
    return text, line_crcs(text), len(rows), _row_end(rows[0]), _row_end(rows[-1])


def _row_end(row: RawAuditRow) -> dict[str, Any]:
    """A batch's first or last record as the manifest names it: its chain position."""
    stored = AuditRow._make(row)
    return {"id": stored.id, "chain_id": stored.chain_id, "seq": stored.seq,
            "mac": stored.mac, "time": iso_time(stored.ts) if type(stored.ts) is int else ""}


def _rendered_end(row: RenderedRow, fmt: Format) -> dict[str, Any]:
    """The same from a database-rendered row: the body is the JSON object of the columns
    after ``id`` (JSON lines) or the JSON array from ``v`` on (CSV, the MAC apart)."""
    if fmt == "jsonl":
        record_id, ts, body = row
        values = json.loads(body)
        chain_id, seq, mac = values["chain_id"], values["seq"], values["mac"]
    else:
        record_id, ts, raw_mac, body, _detail = row
        values = json.loads(body)
        chain_id, seq, mac = values[1], values[2], raw_mac.decode()
    return {"id": record_id, "chain_id": chain_id, "seq": seq, "mac": mac,
            "time": iso_time(ts)}


def _json_record(row: RawAuditRow, when: _TimeText) -> str:
    return json_line(row, when) + "\n"


def _manifest(store: AuditStore, wanted: AuditFilter, *, fmt: Format, signer: Signer,
              generated_at: datetime, count: int, first: dict[str, Any] | None,
              last: dict[str, Any] | None, rows_sha256: str, crcs: array[int]
              ) -> dict[str, Any]:
    latest = store.last_checkpoint()
    chosen = wanted.as_dict()
    manifest: dict[str, Any] = {
        "type": MANIFEST_TYPE, "version": MANIFEST_VERSION, "format": fmt,
        "columns": list(EXPORT_COLUMNS), "filter": chosen,
        "period": {"since": chosen["since"], "until": chosen["until"],
                   "first": first["time"] if first else "",
                   "last": last["time"] if last else ""},
        "generated_at": generated_at.isoformat(), "count": count,
        "first": first, "last": last,
        "rows_sha256": rows_sha256, "line_crc32": pack_crcs(crcs),
        "checkpoint": Checkpoint(*latest).as_dict() if latest else None,
        "key_id": signer.key_id, "public_key": signer.public_pem(),
    }
    manifest["signature"] = signer.sign(canonical_manifest(manifest))
    return manifest



