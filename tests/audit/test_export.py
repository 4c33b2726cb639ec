"""Exports: streamed, spreadsheet-safe, signed; a hand edit fails offline verification."""
from __future__ import annotations

import csv
import io
import json
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from authgate.audit.chain import Keyring
from authgate.audit.checkpoints import Ed25519Signer, TrustedKeys
from authgate.audit.errors import ExportInvalid
from authgate.audit.export import stream_export
from authgate.audit.export_verify import verify_export
from authgate.audit.log import AuditLog
from authgate.audit.render import EXPORT_COLUMNS
from authgate.audit.retention import purge_before
from authgate.storage.audit_rows import AuditFilter
from tests.audit.conftest import check, event, write

NOW = datetime(2026, 2, 1, tzinfo=UTC)


def export_to(path: Path, log: AuditLog, fmt: str, wanted: AuditFilter = AuditFilter(),
              batch: int = 4) -> Path:
    with path.open("wb") as out:
        out.writelines(stream_export(log.store, wanted, fmt=fmt, signer=log.signer,  # type: ignore[arg-type]
                                     generated_at=NOW, batch=batch))
    return path


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_export_verifies_offline_and_edits_fail(tmp_path: Path, audit_log: AuditLog,
                                                keyring: Keyring, trusted: TrustedKeys,
                                                fmt: str) -> None:
    write(audit_log, 11)
    audit_log.checkpoint()
    path = export_to(tmp_path / f"x.{fmt}", audit_log, fmt, AuditFilter(username="user3"))
    done = verify_export(path, trusted=trusted, chain_keys=keyring.keys)
    assert done.count == 2 and done.checkpoint_seq == 1 and done.macs_checked
    assert verify_export(path, trusted=trusted).count == 2  # without the chain key
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    edited = tmp_path / f"edited.{fmt}"
    edited.write_text("".join(lines).replace("user3", "user4", 1), encoding="utf-8")
    with pytest.raises(ExportInvalid):
        verify_export(edited, trusted=trusted)
    cut = tmp_path / f"cut.{fmt}"
    cut.write_text("".join(lines[:-2] + lines[-1:]), encoding="utf-8")
    with pytest.raises(ExportInvalid):
        verify_export(cut, trusted=trusted)
    cut.write_text("".join(lines[:-1]), encoding="utf-8")
    with pytest.raises(ExportInvalid):
        verify_export(cut, trusted=trusted)


def test_manifest_resigned_by_another_key_is_refused(tmp_path: Path, audit_log: AuditLog,
                                                     trusted: TrustedKeys) -> None:
    write(audit_log, 3)
    mallory = Ed25519Signer(Ed25519PrivateKey.generate())
    path = tmp_path / "x.jsonl"
    with path.open("wb") as out:
        out.writelines(stream_export(audit_log.store, AuditFilter(), fmt="jsonl",
                                     signer=mallory, generated_at=NOW))
    with pytest.raises(ExportInvalid, match="untrusted"):
        verify_export(path, trusted=trusted)


def test_csv_cells_cannot_become_formulas(tmp_path: Path, audit_log: AuditLog,
                                          keyring: Keyring, trusted: TrustedKeys) -> None:
    nasty = ["=HYPERLINK(\"http://x\")", "+1", "-2+3", "@SUM(A1)", "\tx", "\rx", "'quoted"]
    for n, name in enumerate(nasty):
        audit_log.record(event(n, username=name, user_agent=name, path="/" + name))
    path = export_to(tmp_path / "x.csv", audit_log, "csv")
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))[1:-1]
    for row in rows:
        for cell in row:
            assert cell[:1] not in "=+-@\t\r" or cell == "", row
    users = [row[EXPORT_COLUMNS.index("username")] for row in rows]
    assert users == ["'" + n if n[:1] in "=+-@'" else n.replace("\t", "\\x09")
                     .replace("\r", "\\x0d") for n in nasty]
    assert verify_export(path, trusted=trusted, chain_keys=keyring.keys).count == len(nasty)


def test_jsonl_lines_are_json_objects(tmp_path: Path, audit_log: AuditLog) -> None:
    audit_log.record(event(1, username='ali"ce\n', detail=(("k", "v\u2028"),)))
    lines = export_to(tmp_path / "x.jsonl", audit_log, "jsonl").read_text().splitlines()
    assert len(lines) == 2
    record = json.loads(lines[0])
    assert record["username"] == 'ali"ce\\x0a' and record["time"].endswith("Z")
    assert "manifest" in json.loads(lines[1])


def test_export_memory_does_not_grow(tmp_path: Path, audit_log: AuditLog) -> None:
    from tests.audit.test_concurrency import bulk_fill

    def peak(count: int) -> int:
        tracemalloc.start()
        total = 0
        for chunk in stream_export(audit_log.store, AuditFilter(), fmt="csv",
                                   signer=audit_log.signer, generated_at=NOW,  # type: ignore[arg-type]
                                   batch=1000):
            total += len(chunk)
        size = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert total > count * 100
        return size

    bulk_fill(audit_log, 5_000)
    small = peak(5_000)
    bulk_fill(audit_log, 45_000)
    large = peak(50_000)
    assert large < small * 1.5 + 200_000, (small, large)


def test_purge_keeps_the_rest_verifiable(audit_log: AuditLog, keyring: Keyring,
                                         trusted: TrustedKeys) -> None:
    write(audit_log, 20)
    audit_log.checkpoint()
    cut = audit_log._clock.now()  # type: ignore[attr-defined]
    write(audit_log, 10)
    result = purge_before(audit_log, cut=cut)
    assert result.deleted == 21 and result.checkpoint is not None
    trail = check(audit_log, keyring, trusted)
    assert trail.records == 10 + 2  # the later records, the purge checkpoint and purge record
