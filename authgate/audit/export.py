"""Exports for auditors (ASVS 7.x): CSV or JSON lines, streamed in constant memory.

Rows are read in keyset batches and written a batch at a time; nothing holds the whole
result. The last line is a manifest: the filter, the count, the first and last record's
MAC, the SHA-256 of every line before it, the latest signed checkpoint, and the signer's
public key, all signed, so ``authgate audit verify --export FILE`` detects a hand edit,
a cut, or a forged manifest offline. CSV cells that start like a formula are prefixed with
``'`` (spreadsheet injection); ``'`` itself too, so the escape is reversible.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from authgate.audit.checkpoints import Checkpoint, Signer
from authgate.audit.render import (
    CSV_HEADER,
    EXPORT_COLUMNS,
    _TimeText,
    csv_line,
    csv_lines,
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
MANIFEST_TYPE = "authgate-audit-manifest"
MANIFEST_VERSION = 1
CSV_MANIFEST_CELL = "#manifest"
MEDIA_TYPES = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson"}


def canonical_manifest(manifest: dict[str, Any]) -> bytes:
    """The signed bytes: the manifest without its signature, sorted, compact."""
    body = {k: v for k, v in manifest.items() if k != "signature"}
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


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
    digest = hashlib.sha256()
    count, first, last = 0, None, None
    if fmt == "csv":
        digest.update(CSV_HEADER.encode())
        yield CSV_HEADER.encode()
    for chunk, rows, head, tail in _batches(store, wanted, fmt, batch):
        first = first or head
        count, last = count + rows, tail
        digest.update(chunk)
        yield chunk
    signed = _manifest(store, wanted, fmt=fmt, signer=signer, generated_at=generated_at,
                       count=count, first=first, last=last, rows_sha256=digest.hexdigest())
    if manifest is not None:
        manifest.update(signed)
    yield _trailer(fmt, signed).encode()


Batch = tuple[bytes, int, dict[str, Any], dict[str, Any]]  # UTF-8, rows, first and last


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
        text = csv_lines(rendered, when) if fmt == "csv" else json_lines(rendered, when)
        if text is None:  # the same rows, whole (a retention purge may have taken them)
            rows = [row for rows in store.row_batches(wanted, after_id=rendered[0][0] - 1,
                                                      last_id=rendered[-1][0], batch=batch)
                    for row in rows]
            if rows:
                yield _from_rows(rows, fmt, when)
            continue
        yield text, len(rendered), _rendered_end(rendered[0]), _rendered_end(rendered[-1])


def _from_rows(rows: list[RawAuditRow], fmt: Format, when: _TimeText) -> Batch:
    line = csv_line if fmt == "csv" else _json_record
    return ("".join([line(row, when) for row in rows]).encode(), len(rows),
            _row_end(rows[0]), _row_end(rows[-1]))


def _row_end(row: RawAuditRow) -> dict[str, Any]:
    """A batch's first or last record as the manifest names it."""
    stored = AuditRow._make(row)
    return {"id": stored.id, "mac": stored.mac}


def _rendered_end(row: RenderedRow) -> dict[str, Any]:
    record_id, _ts, mac, _body, _detail = row
    return {"id": record_id, "mac": mac.decode()}


def _json_record(row: RawAuditRow, when: _TimeText) -> str:
    return json_line(row, when) + "\n"


def _manifest(store: AuditStore, wanted: AuditFilter, *, fmt: Format, signer: Signer,
              generated_at: datetime, count: int, first: dict[str, Any] | None,
              last: dict[str, Any] | None, rows_sha256: str) -> dict[str, Any]:
    latest = store.last_checkpoint()
    manifest: dict[str, Any] = {
        "type": MANIFEST_TYPE, "version": MANIFEST_VERSION, "format": fmt,
        "columns": list(EXPORT_COLUMNS), "filter": wanted.as_dict(),
        "generated_at": generated_at.isoformat(), "count": count,
        "first": first, "last": last,
        "rows_sha256": rows_sha256,
        "checkpoint": Checkpoint(*latest).as_dict() if latest else None,
        "key_id": signer.key_id, "public_key": signer.public_pem(),
    }
    manifest["signature"] = signer.sign(canonical_manifest(manifest))
    return manifest


def _trailer(fmt: Format, manifest: dict[str, Any]) -> str:
    text = json.dumps(manifest, sort_keys=True, separators=(",", ":"))
    if fmt == "jsonl":
        return json.dumps({"manifest": manifest}, sort_keys=True, separators=(",", ":")) + "\n"
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerow([CSV_MANIFEST_CELL, text])
    return buf.getvalue()
