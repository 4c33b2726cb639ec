"""``write_export``: an export written to a file, its id range rendered by forked workers.

A million-record export is CPU-bound (the database renders each row, Python assembles it),
so with ``jobs > 1`` the id range is split into spans and each span is rendered by its own
forked process, exactly as ``stream_export`` renders it, and the worker also computes the
CRC-32 of each of its lines for the manifest. The first span streams to the
parent through a pipe; the others are spooled to unnamed temporary files (unlinked from the
start: no copy of a login history is ever left on disk), which the parent copies *as they
grow*. The parent writes the spans in id order and keeps the single SHA-256 over all of
it, so the file and its manifest are the ones ``stream_export`` would have written, byte
for byte. The first span is a little smaller than the others: its worker ends first, and
the parent is already following the next spool when the last worker ends, instead of
hashing a whole spool after it. A worker that fails or dies fails the export: no manifest
is ever written over missing records.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import multiprocessing
import os
import tempfile
from array import array
from collections.abc import Callable
from datetime import datetime
from typing import Any, BinaryIO

from authgate.audit.checkpoints import Signer
from authgate.audit.errors import AuditError
from authgate.audit.export import (
    Format,
    _batches,
    _manifest,
    line_crcs,
    stream_export,
)
from authgate.audit.export_offline import manifest_line
from authgate.audit.parallel import collector_paused, id_spans
from authgate.audit.render import CSV_HEADER
from authgate.storage.audit_rows import AuditFilter
from authgate.storage.interfaces import AuditStore

_COPY = 1 << 20
_IDLE = 0.005  # seconds the parent waits when it has caught up with a worker
#: the first span's size relative to the others (see the module)
_LEAD = 0.9
Span = tuple[int, int | None]


def write_export(out: BinaryIO, store: AuditStore, wanted: AuditFilter, *, fmt: Format,
                 signer: Signer, generated_at: datetime, batch: int = 5000,
                 jobs: int = 1) -> int:
    """Write the export (records, then the signed manifest) to ``out``; the record count."""
    with collector_paused():
        return _write(out, store, wanted, fmt=fmt, signer=signer, generated_at=generated_at,
                      batch=batch, jobs=jobs)


def _write(out: BinaryIO, store: AuditStore, wanted: AuditFilter, *, fmt: Format,
           signer: Signer, generated_at: datetime, batch: int, jobs: int) -> int:
    spans = id_spans(store, since=wanted.since, until=wanted.until, jobs=jobs, lead=_LEAD)
    if len(spans) <= 1:
        manifest: dict[str, Any] = {}
        for chunk in stream_export(store, wanted, fmt=fmt, signer=signer,
                                   generated_at=generated_at, batch=batch, manifest=manifest):
            out.write(chunk)
        return int(manifest["count"])
    digest, crcs = hashlib.sha256(), array("I")
    if fmt == "csv":
        _emit(out, digest, CSV_HEADER.encode())
        crcs.extend(line_crcs(CSV_HEADER.encode()))
    parts = _run_parts(store, wanted, fmt, batch, spans,
                       lambda data: _emit(out, digest, data))
    count = int(sum(p["rows"] for p in parts))
    for part in parts:  # each worker's CRC-32 per line, in id order
        crcs.frombytes(part["crcs"])
    present = [p for p in parts if p["rows"]]
    manifest = _manifest(store, wanted, fmt=fmt, signer=signer, generated_at=generated_at,
                         count=count, first=present[0]["first"] if present else None,
                         last=present[-1]["last"] if present else None,
                         rows_sha256=digest.hexdigest(), crcs=crcs)
    out.write(manifest_line(fmt, manifest).encode())
    return count


def _emit(out: BinaryIO, digest: Any, data: bytes) -> None:
    digest.update(data)
    out.write(data)


def _run_parts(store: AuditStore, wanted: AuditFilter, fmt: Format, batch: int,
               spans: list[Span], emit: Callable[[bytes], None]) -> list[dict[str, Any]]:
    ctx = multiprocessing.get_context("fork")
    spools = [tempfile.TemporaryFile() for _ in spans[1:]]
    read_end, write_end = os.pipe()
    _widen(write_end)
    workers, results = [], []
    try:
        for i, span in enumerate(spans):
            receive, send = ctx.Pipe(duplex=False)
            target = write_end if i == 0 else spools[i - 1].fileno()
            unused = (read_end,) if i == 0 else (read_end, write_end)
            proc = ctx.Process(target=_render_part, daemon=True,
                               args=(store, wanted, fmt, batch, span, target, unused, send))
            proc.start()
            send.close()
            workers.append(proc)
            results.append(receive)
        os.close(write_end)
        write_end = -1
        with os.fdopen(read_end, "rb", buffering=0) as first:
            read_end = -1
            while data := first.read(_COPY):
                emit(data)
        parts = [_result(results[0], workers[0])]
        return parts + [_follow(spool.fileno(), receive, proc, emit)
                        for spool, receive, proc in zip(spools, results[1:], workers[1:],
                                                        strict=True)]
    finally:
        for proc in workers:
            if proc.is_alive():
                proc.kill()
            proc.join()
        for fd in (read_end, write_end):
            if fd >= 0:
                os.close(fd)
        for spool in spools:
            spool.close()


def _widen(fd: int) -> None:
    """A 1 MiB pipe instead of 64 KiB: the first span's worker stalls less often."""
    try:
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, _COPY)
    except OSError:
        pass  # a smaller pipe is slower, not wrong


def _follow(fd: int, receive: Any, proc: Any, emit: Callable[[bytes], None]
            ) -> dict[str, Any]:
    """Emit a worker's spool from the start as it grows, until the worker has reported
    (after its last write) and every byte is read. ``pread``: the worker's writes move the
    file offset the parent's descriptor shares."""
    offset, outcome = 0, None
    while True:
        data = os.pread(fd, _COPY, offset)
        if data:
            offset += len(data)
            emit(data)
        elif outcome is not None:
            return outcome
        elif receive.poll(_IDLE):  # the report, or the end of a worker that died
            outcome = _result(receive, proc)


def _result(receive: Any, proc: Any) -> dict[str, Any]:
    try:
        outcome = json.loads(receive.recv())
    except (EOFError, OSError, ValueError) as exc:
        proc.join()
        raise AuditError(f"an export worker died (exit code {proc.exitcode})") from exc
    if "error" in outcome:
        raise AuditError(f"an export worker failed: {outcome['error']}")
    try:
        outcome["crcs"] = receive.recv_bytes()
    except (EOFError, OSError) as exc:
        proc.join()
        raise AuditError(f"an export worker died (exit code {proc.exitcode})") from exc
    return outcome  # type: ignore[no-any-return]


def _render_part(store: AuditStore, wanted: AuditFilter, fmt: Format, batch: int,
                 span: Span, fd: int, unused: tuple[int, ...], send: Any) -> None:
    """In the forked worker: render ``span`` into ``fd``, then report rows and ends. The
    pipe ends it does not use are closed first: the parent sees the end of the first span
    only once no process holds its write end."""
    for other in unused:
        os.close(other)
    rows, first, last, crcs = 0, None, None, array("I")
    try:
        with open(fd, "wb", buffering=_COPY) as sink:  # noqa: PTH123 - the worker's own fd
            for text, text_crcs, count, head, tail in _batches(store, wanted, fmt, batch,
                                                               span=span):
                sink.write(text)
                crcs.extend(text_crcs)
                rows, first, last = rows + count, first or head, tail
        send.send(json.dumps({"rows": rows, "first": first, "last": last}))
        send.send_bytes(crcs.tobytes())  # native order: the parent is this machine
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which fails the export
        send.send(json.dumps({"error": f"{type(exc).__name__}: {exc}"}))
    finally:
        send.close()
