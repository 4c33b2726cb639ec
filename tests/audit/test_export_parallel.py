"""Parallel exports (``write_export`` with ``jobs > 1``): the very bytes of a one-process
export, on SQLite and PostgreSQL; a worker that fails or dies fails the whole export."""
from __future__ import annotations

import io
import os
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from authgate.audit import export_parallel
from authgate.audit.chain import Keyring
from authgate.audit.checkpoints import TrustedKeys
from authgate.audit.errors import AuditError, ExportInvalid
from authgate.audit.export import stream_export
from authgate.audit.export_parallel import write_export
from authgate.audit.export_verify import verify_export
from authgate.audit.log import AuditLog
from authgate.storage.audit_rows import AuditFilter
from tests.audit.conftest import event, write
from tests.audit.test_cli import config, run  # noqa: F401 - the CLI tests' configured store

NOW = datetime(2026, 2, 1, tzinfo=UTC)


def one_process(log: AuditLog, fmt: str, wanted: AuditFilter) -> bytes:
    return b"".join(stream_export(log.store, wanted, fmt=fmt, signer=log.signer,  # type: ignore[arg-type]
                                  generated_at=NOW, batch=4))


def parallel(log: AuditLog, fmt: str, wanted: AuditFilter, jobs: int) -> tuple[bytes, int]:
    out = io.BytesIO()
    count = write_export(out, log.store, wanted, fmt=fmt, signer=log.signer,  # type: ignore[arg-type]
                         generated_at=NOW, batch=4, jobs=jobs)
    return out.getvalue(), count


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_parallel_export_is_the_one_process_export(audit_log: AuditLog, fmt: str) -> None:
    write(audit_log, 37)
    audit_log.record(event(99, username='quote " and =formula'))
    audit_log.checkpoint()
    for wanted in (AuditFilter(), AuditFilter(username="user3"), AuditFilter(username="none")):
        expected = one_process(audit_log, fmt, wanted)
        for jobs in (1, 2, 3, 7):
            data, count = parallel(audit_log, fmt, wanted, jobs)
            assert data == expected, (wanted, jobs)
            assert count == sum(1 for line in expected.splitlines()
                                if b'"manifest"' not in line and b"#manifest" not in line
                                ) - (fmt == "csv")


def test_a_parallel_export_verifies_offline(tmp_path: Path, audit_log: AuditLog,
                                            keyring: Keyring, trusted: TrustedKeys) -> None:
    write(audit_log, 25)
    path = tmp_path / "x.csv"
    with path.open("wb") as out:
        write_export(out, audit_log.store, AuditFilter(), fmt="csv",  # type: ignore[arg-type]
                     signer=audit_log.signer, generated_at=NOW, batch=3, jobs=3)  # type: ignore[arg-type]
    assert verify_export(path, trusted=trusted, chain_keys=keyring.keys).count == 25


def failing_batches(*args, span=(1, None), **kw):  # type: ignore[no-untyped-def]
    from authgate.audit.export import _batches

    if span[0] > 1:
        raise RuntimeError("disk full")
    yield from _batches(*args, span=span, **kw)


def dying_batches(*args, span=(1, None), **kw):  # type: ignore[no-untyped-def]
    from authgate.audit.export import _batches

    if span[0] > 1:
        os._exit(9)
    yield from _batches(*args, span=span, **kw)


@pytest.mark.parametrize(("replacement", "message"), [(failing_batches, "failed: RuntimeError"),
                                                      (dying_batches, "died")])
def test_a_failing_worker_fails_the_export(tmp_path: Path, audit_log: AuditLog,
                                           trusted: TrustedKeys,
                                           monkeypatch: pytest.MonkeyPatch, replacement,  # type: ignore[no-untyped-def]
                                           message: str) -> None:
    write(audit_log, 20)
    monkeypatch.setattr(export_parallel, "_batches", replacement)
    path = tmp_path / "x.jsonl"
    with path.open("wb") as out, pytest.raises(AuditError, match=message):
        write_export(out, audit_log.store, AuditFilter(), fmt="jsonl",  # type: ignore[arg-type]
                     signer=audit_log.signer, generated_at=NOW, batch=4, jobs=2)  # type: ignore[arg-type]
    assert b'"manifest"' not in path.read_bytes()  # whatever was written is no export
    with pytest.raises(ExportInvalid):
        verify_export(path, trusted=trusted)


def test_cli_export_appears_only_when_complete(tmp_path: Path, config: Path,  # noqa: F811
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = config
    target = tmp_path / "out.jsonl"
    code, out = run(cfg, "export", "--jobs", "2", "-o", str(target))
    assert code == 0, out
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert run(cfg, "verify", "--export", str(target))[0] == 0
    monkeypatch.setattr(export_parallel, "_batches", failing_batches)
    failed = tmp_path / "failed.jsonl"
    code, out = run(cfg, "export", "--jobs", "2", "-o", str(failed))
    assert code != 0 and "export failed" in out, out
    assert not failed.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".part")] == []


def test_a_bulk_pass_pauses_the_collector_and_restores_it(audit_log: AuditLog,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    """``write_export`` runs with the cyclic collector off (a tuple per row set off a
    collection every few hundred rows), and leaves it as it was, even when it fails."""
    import gc

    write(audit_log, 5)
    seen: list[bool] = []
    real = export_parallel.stream_export

    def watching(*args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(gc.isenabled())
        yield from real(*args, **kwargs)

    monkeypatch.setattr(export_parallel, "stream_export", watching)
    assert gc.isenabled()
    write_export(io.BytesIO(), audit_log.store, AuditFilter(), fmt="csv",  # type: ignore[arg-type]
                 signer=audit_log.signer, generated_at=NOW, jobs=1)
    assert seen == [False] and gc.isenabled()

    def failing(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("disk full")
        yield b""

    monkeypatch.setattr(export_parallel, "stream_export", failing)
    with pytest.raises(RuntimeError):
        write_export(io.BytesIO(), audit_log.store, AuditFilter(), fmt="csv",  # type: ignore[arg-type]
                     signer=audit_log.signer, generated_at=NOW, jobs=1)
    assert gc.isenabled()


def test_spans_cover_every_id_once_and_the_first_is_smaller(audit_log: AuditLog) -> None:
    """The parent hashes every byte, so an export's first span is 0.9 of the others: its
    worker ends first and the parent follows the next spool while it is being written."""
    from authgate.audit.parallel import id_spans

    ids = write(audit_log, 100)
    for jobs, lead in ((3, 0.9), (2, 0.9), (4, 1.0), (150, 0.9)):
        spans = id_spans(audit_log.store, since=None, until=None, jobs=jobs, lead=lead)
        assert [i for a, b in spans for i in range(a, b + 1)] == list(range(1, ids[-1] + 1))
        sizes = [b - a + 1 for a, b in spans]  # type: ignore[operator]
        if jobs <= 4:
            assert len(sizes) == jobs and max(sizes[1:]) - min(sizes[1:]) <= 1
            assert (sizes[0] < min(sizes[1:])) == (lead < 1), sizes
