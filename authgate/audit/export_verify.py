"""Offline verification of an exported file (``authgate audit verify --export FILE``).

Needs no database: the manifest's signature is checked with a *trusted* public key (the
configured ones or ``--public-key``; a key that only the file itself vouches for is
refused), then every line before the manifest is re-hashed and counted, and, when the chain
keys are at hand, each record's MAC is recomputed and consecutive records of a chain must
link. Any difference raises ``ExportInvalid`` naming the line.
"""
from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from authgate.audit.chain import check_row
from authgate.audit.checkpoints import TrustedKeys
from authgate.audit.errors import AuditError, ExportInvalid
from authgate.audit.export import CSV_MANIFEST_CELL, MANIFEST_TYPE, canonical_manifest
from authgate.audit.render import EXPORT_COLUMNS, csv_unescape, row_from_export


@dataclass(frozen=True)
class VerifiedExport:
    count: int
    format: str
    key_id: str
    checkpoint_seq: int | None
    macs_checked: bool
    filter: dict[str, str]


def verify_export(path: str | Path, *, trusted: TrustedKeys,
                  chain_keys: Mapping[str, bytes] | None = None) -> VerifiedExport:
    digest = hashlib.sha256()
    count, fmt, first, last, manifest_line = 0, "", None, None, None
    links: dict[str, tuple[int, str]] = {}
    for number, line, is_last in _lines(Path(path)):
        if is_last:
            manifest_line = (number, line)
            break
        digest.update(line.encode())
        if number == 1:
            fmt = "csv" if line.rstrip("\r\n") == ",".join(EXPORT_COLUMNS) else "jsonl"
            if fmt == "csv":
                continue
        row = _parse(line, fmt, number)
        _check_row(row, number, chain_keys, links)
        count += 1
        first = first or {"id": row[0], "mac": row[-1]}
        last = {"id": row[0], "mac": row[-1]}
    if manifest_line is None:
        raise ExportInvalid("empty file: no manifest")
    manifest = _manifest(*manifest_line, fmt or "jsonl")
    _check_manifest(manifest, trusted)
    for name, value in (("count", count), ("first", first), ("last", last),
                        ("rows_sha256", digest.hexdigest())):
        if manifest.get(name) != value:
            raise ExportInvalid(f"the records differ from the manifest ({name})",
                                line=manifest_line[0])
    cp = manifest.get("checkpoint")
    return VerifiedExport(count=count, format=manifest["format"], key_id=manifest["key_id"],
                          checkpoint_seq=cp["seq"] if cp else None,
                          macs_checked=chain_keys is not None, filter=manifest["filter"])


def _lines(path: Path) -> Iterator[tuple[int, str, bool]]:
    """Physical lines with a one-line lookahead, so the last one is known (the manifest)."""
    with path.open("r", encoding="utf-8", newline="") as source:
        previous: str | None = None
        number = 0
        for line in source:
            if previous is not None:
                yield number, previous, False
            number += 1
            previous = line
        if previous is not None:
            yield number, previous, True


def _parse(line: str, fmt: str, number: int) -> tuple[Any, ...]:
    try:
        if fmt == "csv":
            cells = next(csv.reader([line]))
            values: dict[str, Any] = dict(zip(EXPORT_COLUMNS, map(csv_unescape, cells),
                                              strict=True))
        else:
            values = json.loads(line)
        return row_from_export(values)
    except (ValueError, KeyError, StopIteration, TypeError) as exc:
        raise ExportInvalid(f"not an export record ({type(exc).__name__})", line=number) from exc


def _check_row(row: tuple[Any, ...], number: int, chain_keys: Mapping[str, bytes] | None,
               links: dict[str, tuple[int, str]]) -> None:
    if chain_keys is None:
        return
    result = check_row(chain_keys, row[1:-1], row[-1])
    if not (result.mac_ok and result.well_formed):
        why = "unknown chain key" if not result.known_key else "MAC does not match"
        raise ExportInvalid(f"record {row[0]}: {why}", line=number)
    chain_id, seq, prev = row[2], row[3], row[5]
    before = links.get(chain_id)
    if before is not None and before[0] + 1 == seq and before[1] != prev:
        raise ExportInvalid(f"record {row[0]} does not follow record seq {before[0]}",
                            line=number)
    links[chain_id] = (seq, row[-1])


def _manifest(number: int, line: str, fmt: str) -> dict[str, Any]:
    try:
        if fmt == "csv":
            cells = next(csv.reader([line]))
            if cells[0] != CSV_MANIFEST_CELL:
                raise ValueError("no manifest cell")
            manifest = json.loads(cells[1])
        else:
            manifest = json.loads(line)["manifest"]
    except (ValueError, KeyError, IndexError, StopIteration, TypeError) as exc:
        raise ExportInvalid("the last line is not a manifest (file cut?)", line=number) from exc
    if not isinstance(manifest, dict) or manifest.get("type") != MANIFEST_TYPE:
        raise ExportInvalid("the last line is not a manifest", line=number)
    return manifest


def _check_manifest(manifest: dict[str, Any], trusted: TrustedKeys) -> None:
    try:
        trusted.verify(key_id=str(manifest.get("key_id")), data=canonical_manifest(manifest),
                       signature=str(manifest.get("signature")))
        cp = manifest.get("checkpoint")
        if cp:
            trusted.verify(key_id=cp["key_id"], data=cp["payload"].encode(),
                           signature=cp["signature"])
    except AuditError as exc:
        raise ExportInvalid(f"manifest signature: {exc}") from exc
