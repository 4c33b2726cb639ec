"""Checking an authgate audit export with the signer's public key alone (issue 16 item 3).

Stand-alone (the standard library and ``cryptography``): an auditor copies this file
(``tools/verify-export.py``) and runs ``python3 verify-export.py --public-key KEY.pem FILE
[--json]``: exit 0 intact, 1 damaged (kind and line), 2 could not check. The manifest, the
Ed25519-signed last line, holds the SHA-256 of the lines and a CRC-32 per line (docs/audit.md).
"""
from __future__ import annotations

import argparse
import base64
import csv
import hashlib
import hmac
import io
import json
import re
import sys
import zlib
from array import array
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

MANIFEST_TYPE = "authgate-audit-manifest"
CSV_MANIFEST_CELL = "#manifest"
#: a CSV cell the exporter writes never starts so (it prefixes ``'``: OWASP CSV injection)
FORMULA_START = frozenset("=+-@\t\r")
#: one record's chain position and time, as the manifest names its first and last record
END_FIELDS = ("id", "chain_id", "seq", "mac", "time")
INT_COLUMNS = ("id", "v", "seq", "ts")
#: ``record_check(values) -> None | (kind, detail)``: the key holder's per-record check
RecordCheck = Callable[[dict[str, Any]], tuple[str, str] | None]


class ExportDamaged(Exception):
    """The file is not what authgate exported: ``kind`` of damage, at ``line``."""
    def __init__(self, kind: str, line: int, detail: str) -> None:
        self.kind, self.line, self.detail = kind, line, detail
        super().__init__(f"line {line}: {kind}: {detail}")


class CannotCheck(Exception):
    """The check could not run (no trusted key, unreadable file): not a verdict."""


@dataclass(frozen=True)
class ExportReport:
    """The verdict an auditor signs; ``asdict`` of it is the ``--json`` report."""

    verdict: str
    records: int = 0
    format: str = ""
    key_id: str = ""
    filter: dict[str, str] = field(default_factory=dict)
    period: dict[str, str] = field(default_factory=dict)
    checkpoint: int | None = None
    checkpoint_signature: str = ""
    record_macs: str = ""
    damage: dict[str, Any] | None = None
    reason: str = ""


def manifest_line(fmt: str, manifest: Mapping[str, Any]) -> str:  # as written: else edited
    if fmt == "jsonl":
        return json.dumps({"manifest": manifest}, sort_keys=True, separators=(",", ":")) + "\n"
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerow(
        [CSV_MANIFEST_CELL, json.dumps(manifest, sort_keys=True, separators=(",", ":"))])
    return buf.getvalue()


def canonical_manifest(manifest: Mapping[str, Any]) -> bytes:  # without its signature
    body = {k: v for k, v in manifest.items() if k != "signature"}
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def unpack_crcs(text: str) -> array[int]:  # base64 of big-endian CRC-32s (pack_crcs)
    crcs = array("I")
    crcs.frombytes(base64.b64decode(text, validate=True))
    if sys.byteorder == "little":
        crcs.byteswap()
    return crcs


def load_public_keys(pems: Sequence[bytes]) -> dict[str, Ed25519PublicKey]:
    """Trusted keys by key id (``ed25519:`` and the first 16 hex of the raw key's SHA-256)."""
    keys = {}
    for pem in pems:
        try:
            key = serialization.load_pem_public_key(pem)
        except ValueError as exc:
            raise CannotCheck("the public key is not a PEM public key") from exc
        if not isinstance(key, Ed25519PublicKey):
            raise CannotCheck("the public key is not an Ed25519 key")
        raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        keys["ed25519:" + hashlib.sha256(raw).hexdigest()[:16]] = key
    return keys


@dataclass
class _Scan:
    """What the lines before the manifest hold."""

    lines: int = 0
    records: int = 0
    first: dict[str, Any] | None = None
    last: dict[str, Any] | None = None
    crcs: array[int] = field(default_factory=lambda: array("I"))
    sha256: Any = field(default_factory=hashlib.sha256)
    problem: ExportDamaged | None = None
    seqs: dict[str, int] = field(default_factory=dict)


def check_export(path: str | Path, *, public_keys: Mapping[str, Ed25519PublicKey],
                 hmac_keys: Mapping[str, bytes] | None = None,
                 record_check: RecordCheck | None = None) -> ExportReport:
    """The verdict on one export; raise ``ExportDamaged`` or ``CannotCheck``."""
    try:
        with Path(path).open("rb") as source:
            manifest_text, manifest_at = _last_line(source)
            manifest = _parse_manifest(manifest_text)
            scan = _scan(source, manifest_at, manifest, record_check)
    except OSError as exc:
        raise CannotCheck(f"cannot read {path}: {exc.strerror}") from exc
    at = scan.lines + 1
    if manifest is None:
        raise _no_manifest(manifest_text, scan)
    if manifest_text != manifest_line(str(manifest.get("format")), manifest).encode():
        raise ExportDamaged("manifest_invalid", at, "the manifest line is not as exported")
    cp_note = _check_signatures(manifest, at, public_keys, hmac_keys or {})
    _compare(manifest, scan, at)
    cp = manifest.get("checkpoint")
    return ExportReport(
        verdict="intact", records=scan.records, format=str(manifest.get("format")),
        key_id=str(manifest["key_id"]), filter=manifest.get("filter") or {},
        period=manifest.get("period") or {}, checkpoint=cp["seq"] if cp else None,
        checkpoint_signature=cp_note,
        record_macs="checked" if record_check else "not checked: public key only")


def _last_line(source: BinaryIO) -> tuple[bytes, int]:
    """The last line (the manifest) and where it starts, read backwards from the end."""
    end = source.seek(0, 2)
    at, tail = end, b""
    while at > 0:
        step = min(1 << 16, at)
        at -= step
        source.seek(at)
        tail = source.read(step) + tail
        cut = tail.rfind(b"\n", 0, len(tail) - 1)
        if cut >= 0:
            return tail[cut + 1:], at + cut + 1
    return tail, 0


def _parse_manifest(text: bytes) -> dict[str, Any] | None:
    try:
        line = text.decode()
        if line.startswith(CSV_MANIFEST_CELL + ","):
            cells = next(csv.reader([line]))
            manifest = json.loads(cells[1])
        else:
            manifest = json.loads(line)["manifest"]
    except (ValueError, KeyError, IndexError, TypeError, StopIteration, RecursionError,
            csv.Error):
        return None
    if not isinstance(manifest, dict) or manifest.get("type") != MANIFEST_TYPE:
        return None
    return manifest


def _no_manifest(text: bytes, scan: _Scan) -> ExportDamaged:
    if not text:
        return ExportDamaged("truncated", 1, "empty file: no records and no manifest")
    return ExportDamaged("truncated", scan.lines + 1, "the last line is not a manifest: the "
                         "file is cut" + ("" if text.endswith(b"\n") else " inside a line"))


def _check_signatures(manifest: dict[str, Any], at: int,
                      public_keys: Mapping[str, Ed25519PublicKey],
                      hmac_keys: Mapping[str, bytes]) -> str:
    """The manifest's signature must be good; the embedded checkpoint's too where a key
    for it is at hand (the manifest's signature already covers it). Returns the note."""
    key_id = str(manifest.get("key_id"))
    if not _signature_ok(key_id, canonical_manifest(manifest), manifest.get("signature"),
                         public_keys, hmac_keys, at=at, what="manifest"):
        raise ExportDamaged("manifest_invalid", at, "bad manifest signature")
    cp = manifest.get("checkpoint")
    if not cp:
        return "no checkpoint yet"
    if not isinstance(cp, dict) or not isinstance(cp.get("payload"), str):
        raise ExportDamaged("manifest_invalid", at, "the checkpoint is malformed")
    cp_key = str(cp.get("key_id"))
    if cp_key not in public_keys and cp_key not in hmac_keys:
        return f"not checked: signed by {cp_key}, no key for it at hand"
    if not _signature_ok(cp_key, cp["payload"].encode(), cp.get("signature"), public_keys,
                         hmac_keys, at=at, what="checkpoint"):
        raise ExportDamaged("checkpoint_invalid", at, f"bad signature on checkpoint "
                            f"#{cp.get('seq')}")
    return "checked"


def _signature_ok(key_id: str, data: bytes, signature: Any,
                  public_keys: Mapping[str, Ed25519PublicKey],
                  hmac_keys: Mapping[str, bytes], *, at: int, what: str) -> bool:
    if key_id in public_keys:
        if type(signature) is not str or not re.fullmatch(r"[0-9a-f]{128}", signature):
            return False  # lower-case hex only: any other spelling is an edit
        try:
            public_keys[key_id].verify(bytes.fromhex(signature), data)
        except (InvalidSignature, ValueError):
            return False
        return True
    if key_id in hmac_keys:
        good = hmac.digest(hmac_keys[key_id], data, "sha256").hex()
        return hmac.compare_digest(good, str(signature))
    if key_id.startswith("hmac:") and public_keys:  # trusted Ed25519 keys sign every export
        raise ExportDamaged("untrusted_key", at, f"the {what} claims the HMAC key {key_id[:40]}"
                            "; the trusted keys are Ed25519: edited")
    if key_id.startswith("hmac:"):
        raise CannotCheck(f"the {what} is signed with the HMAC chain key {key_id} (no "
                          "Ed25519 signing key was configured): only its holders can check it")
    if not public_keys:
        raise CannotCheck("no trusted public key: give --public-key")
    raise ExportDamaged("untrusted_key", at, f"the {what} is signed by an untrusted key "
                        f"{key_id} (trusted: {', '.join(sorted(public_keys))})")


def _scan(source: BinaryIO, end: int, manifest: dict[str, Any] | None,
          record_check: RecordCheck | None) -> _Scan:
    scan = _Scan()
    columns = [str(c) for c in (manifest or {}).get("columns") or ()]
    fmt = str((manifest or {}).get("format", ""))
    source.seek(0)
    while end > 0 and (raw := source.readline(end)):
        end -= len(raw)
        scan.lines += 1
        scan.sha256.update(raw)
        scan.crcs.append(zlib.crc32(raw[:-1] if raw.endswith(b"\n") else raw))
        if scan.problem is not None or manifest is None:
            continue
        try:
            _record(scan, raw, fmt, columns, record_check)
        except ExportDamaged as exc:
            scan.problem = exc
        except (RecursionError, csv.Error, OverflowError) as exc:  # nested or long beyond
            scan.problem = ExportDamaged("not_a_record", scan.lines, f"a line authgate never "
                                         f"writes ({type(exc).__name__})")  # any export
    return scan


def _record(scan: _Scan, raw: bytes, fmt: str, columns: list[str],
            record_check: RecordCheck | None) -> None:
    line = scan.lines
    try:
        text = raw.decode()
    except UnicodeDecodeError as exc:
        raise ExportDamaged("not_a_record", line, "not UTF-8") from exc
    if fmt == "csv" and line == 1:
        if text != ",".join(columns) + "\r\n":
            raise ExportDamaged("altered", line, "the CSV header differs from the columns")
        return
    values = _values(text, fmt, columns, line)
    end = {name: values.get(name) for name in END_FIELDS}
    _check_order(scan, end, line)
    if record_check is not None and (bad := record_check(values)) is not None:
        raise ExportDamaged(bad[0], line, bad[1])
    scan.records += 1
    scan.first = scan.first or end
    scan.last = end


def _values(text: str, fmt: str, columns: list[str], line: int) -> dict[str, Any]:
    try:
        if fmt == "csv":
            cells = next(csv.reader([text]))
            for cell in cells:
                if cell[:1] in FORMULA_START:
                    raise ExportDamaged("csv_injection", line, "a cell starts like a "
                                        f"spreadsheet formula: {cell[:20]!r}")
            values: dict[str, Any] = dict(zip(columns, (  # the formula escape (') undone
                c[1:] if c[:1] == "'" else c for c in cells), strict=True))
            for name in INT_COLUMNS:
                values[name] = int(values[name])
        else:
            values = json.loads(text)
            if not isinstance(values, dict) or list(values) != columns or any(
                    type(values[name]) is not int for name in INT_COLUMNS):
                raise ValueError("not the exported columns")
    except (ValueError, KeyError, StopIteration, TypeError) as exc:
        raise ExportDamaged("not_a_record", line, f"not an export record "
                            f"({type(exc).__name__})") from exc
    return values


def _check_order(scan: _Scan, end: dict[str, Any], line: int) -> None:
    """Records leave in id order, and a chain's ``seq`` only grows."""
    if scan.last is not None and not int(end["id"]) > int(scan.last["id"]):
        raise ExportDamaged("reordered", line, f"record {end['id']} after record "
                            f"{scan.last['id']}")
    chain, seq = str(end["chain_id"]), int(end["seq"])
    if chain in scan.seqs and seq <= scan.seqs[chain]:
        raise ExportDamaged("reordered", line, f"chain {chain} seq {seq} after seq "
                            f"{scan.seqs[chain]}")
    scan.seqs[chain] = seq


def _compare(manifest: dict[str, Any], scan: _Scan, at: int) -> None:
    """The lines against the signed manifest: the first line that differs, by kind."""
    packed = manifest.get("line_crc32")
    want = unpack_crcs(packed) if isinstance(packed, str) else None
    skip = 1 if manifest.get("format") == "csv" else 0  # the CSV header
    located = _first_difference(want, scan, at, skip) if want is not None else None
    problem = scan.problem
    if problem is not None and (located is None or problem.line < located.line or (
            problem.line == located.line and problem.kind != "reordered")):
        raise problem
    if located is not None:
        raise located
    for name, value in (("rows_sha256", scan.sha256.hexdigest()), ("count", scan.records),
                        ("first", scan.first), ("last", scan.last)):
        if manifest.get(name) != value:
            raise ExportDamaged("altered", at, f"the records differ from the manifest "
                                f"({name}); no single line located")


def _first_difference(want: array[int], scan: _Scan, at: int, skip: int
                      ) -> ExportDamaged | None:
    got = scan.crcs
    k = next((i for i, (a, b) in enumerate(zip(got, want, strict=False)) if a != b),
             min(len(got), len(want)))
    if len(got) == len(want) and k == len(got):
        return None
    if len(got) - skip > 1 and set(want[skip:]).isdisjoint(got[skip:]):
        return ExportDamaged("foreign_manifest", at, "no line of the file is in the "
                             "manifest: it belongs to another export")
    line = k + 1
    if k + 1 < min(len(got), len(want)) and got[k] == want[k + 1] and got[k + 1] == want[k]:
        return ExportDamaged("reordered", line, f"lines {line} and {line + 1} are swapped")
    if k >= len(got) or (k + 1 < len(want) and got[k] == want[k + 1]):
        return ExportDamaged("removed", line, f"a line is missing before line {line}"
                             f" ({len(want) - len(got)} lines fewer than exported)")
    if k >= len(want) or (k + 1 < len(got) and got[k + 1] == want[k]):
        return ExportDamaged("added", line, "a line that was not exported")
    return ExportDamaged("altered", line, "the line differs from the exported one")


def report_text(report: ExportReport) -> str:  # --json prints asdict(report) instead
    if report.verdict == "damaged" and (d := report.damage):
        return f"DAMAGED line {d['line']}: {d['kind']}: {d['detail']}"
    if report.verdict == "cannot_check":
        return f"cannot check: {report.reason}"
    return (f"export intact: {report.records} records ({report.format}, "
            f"{report.period.get('first') or '-'} .. {report.period.get('last') or '-'}),"
            f" signed by {report.key_id}; checkpoint #{report.checkpoint}"
            f" ({report.checkpoint_signature}); record MACs {report.record_macs}")


def run(path: str, *, public_keys: Mapping[str, Ed25519PublicKey],
        hmac_keys: Mapping[str, bytes] | None = None,
        record_check: RecordCheck | None = None) -> tuple[int, ExportReport]:
    """Exit status and report: 0 intact, 1 damaged, 2 could not check."""
    try:
        return 0, check_export(path, public_keys=public_keys, hmac_keys=hmac_keys,
                               record_check=record_check)
    except ExportDamaged as exc:
        return 1, ExportReport(verdict="damaged", damage={
            "kind": exc.kind, "line": exc.line, "detail": exc.detail})
    except CannotCheck as exc:
        return 2, ExportReport(verdict="cannot_check", reason=str(exc))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Verify an authgate audit export offline.")
    parser.add_argument("file")
    parser.add_argument("--public-key", action="append", default=[], required=True,
                        help="the signer's Ed25519 public key (PEM); repeat for old keys")
    parser.add_argument("--json", action="store_true", help="a machine-readable report")
    args = parser.parse_args(argv)
    try:
        keys = load_public_keys([Path(p).read_bytes() for p in args.public_key])
    except (OSError, CannotCheck) as exc:
        code, report = 2, ExportReport(verdict="cannot_check", reason=str(exc))
    else:
        code, report = run(args.file, public_keys=keys)
    print(json.dumps(asdict(report)) if args.json else report_text(report),
          file=sys.stdout if code == 0 or args.json else sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
