"""SQLite renders export lines itself (``storage.sql_audit_lines``); every line must be the
one ``audit.records`` renders from the whole row, however awkward the stored text.

The reference is the Python path (what PostgreSQL exports use): the same store with the
database's rendering switched off. Rows are written the way a writer writes them, and also
straight into the table (hand-edited or foreign rows), so text that ``neutralise`` would
have cleaned, quotes, formula starts and control characters all reach the renderers.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine

from authgate.audit.chain import Keyring
from authgate.audit.checkpoints import TrustedKeys
from authgate.audit.errors import ExportInvalid
from authgate.audit.export import stream_export
from authgate.audit.export_verify import verify_export
from authgate.audit.log import AuditLog
from authgate.storage.audit_rows import AuditFilter
from authgate.storage.engine import make_engine, migrate
from authgate.storage.sql_audit import SqlAuditStore
from tests.audit.conftest import TickingClock, event, sql

NOW = datetime(2026, 2, 1, tzinfo=UTC)
AWKWARD = ['say "hi"', "=HYPERLINK(\"x\")", "+1", "-2", "@SUM(A1)", "'quoted", "\ttab",
           "back\\slash", "Zürich – ö", "emoji 😀", "", ",\"=cell-like", "a,b", "\u2028"]
RAW = ["line\nbreak", "cr\rhere", "\rstart", "nul\x00byte", "bell\x07", "del\x7f", "\x1b[31m"]


@pytest.fixture
def sqlite_log(tmp_path: Path, keyring: Keyring, signer) -> Iterator[AuditLog]:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'render.db'}"
    migrate(url)
    engine = make_engine(url)
    log = AuditLog(SqlAuditStore(engine), TickingClock(), keyring=keyring, signer=signer,
                   checkpoint_every=10_000)
    yield log
    engine.dispose()


def fill(log: AuditLog) -> None:
    for n in range(12):  # clean rows: whole batches take the database's rendering
        log.record(event(n))
    for n, text in enumerate(AWKWARD):
        log.record(event(100 + n, username=text, user_agent=text, path="/" + text,
                         detail=(("note", text),)))
    engine: Engine = log.store.engine  # type: ignore[attr-defined]
    for n, text in enumerate(RAW):  # past neutralise: as if edited in the database
        sql(engine, "UPDATE audit_events SET user_agent = :t, host = :t, reason = :t "
            "WHERE id = :id", t=text, id=3 + n)
    for n in range(15):  # and clean again: more whole batches for the database
        log.record(event(200 + n))


def export(log: AuditLog, fmt: str, *, rendered: bool, batch: int,
           wanted: AuditFilter = AuditFilter()) -> str:
    store = log.store
    assert isinstance(store, SqlAuditStore)
    store.is_sqlite = rendered  # the Python path is the reference (PostgreSQL's path)
    try:
        return b"".join(stream_export(store, wanted, fmt=fmt, signer=log.signer,  # type: ignore[arg-type]
                                      generated_at=NOW, batch=batch)).decode()
    finally:
        store.is_sqlite = True


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
@pytest.mark.parametrize("batch", [1, 5, 1000])
def test_database_rendering_equals_the_reference(sqlite_log: AuditLog, fmt: str,
                                                 batch: int) -> None:
    fill(sqlite_log)
    fast = export(sqlite_log, fmt, rendered=True, batch=batch)
    reference = export(sqlite_log, fmt, rendered=False, batch=batch)
    assert fast.splitlines() == reference.splitlines()
    assert fast == reference  # the manifest too: same count, ends and digest


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_filtered_database_rendering_equals_the_reference(sqlite_log: AuditLog,
                                                          fmt: str) -> None:
    fill(sqlite_log)
    for wanted in (AuditFilter(username="user3"), AuditFilter(username='say "hi"'),
                   AuditFilter(username="nobody")):
        assert (export(sqlite_log, fmt, rendered=True, batch=2, wanted=wanted)
                == export(sqlite_log, fmt, rendered=False, batch=2, wanted=wanted))


def test_the_clean_path_and_the_fallback_both_run(sqlite_log: AuditLog,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The comparison above proves something only if both renderers took part."""
    import authgate.audit.export as export_module

    fill(sqlite_log)
    calls = {"rendered": 0, "fallback": 0}
    real_lines = export_module.csv_lines

    def counting_lines(batch, when):  # type: ignore[no-untyped-def]
        text = real_lines(batch, when)
        calls["rendered" if text is not None else "fallback"] += 1
        return text

    monkeypatch.setattr(export_module, "csv_lines", counting_lines)
    export(sqlite_log, "csv", rendered=True, batch=5)
    assert calls["rendered"] >= 2 and calls["fallback"] >= 2, calls


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_awkward_export_verifies_offline(tmp_path: Path, sqlite_log: AuditLog,
                                         keyring: Keyring, trusted: TrustedKeys,
                                         fmt: str) -> None:
    for n, text in enumerate(AWKWARD):
        sqlite_log.record(event(n, username=text, user_agent=text, path="/" + text))
    path = tmp_path / f"awkward.{fmt}"
    path.write_text(export(sqlite_log, fmt, rendered=True, batch=4), encoding="utf-8",
                    newline="")
    done = verify_export(path, trusted=trusted, chain_keys=keyring.keys)
    assert done.count == len(AWKWARD) and done.macs_checked


def test_a_null_in_a_rendered_cell_takes_the_reference_path(sqlite_log: AuditLog) -> None:
    """NULLs cannot be written (NOT NULL); a schema edited to allow them still exports."""
    from authgate.audit.render import csv_lines

    rows = [(1, 1_767_225_600_000_000, None, b'[1,"c",1]', b"{}"),
            (2, 1_767_225_600_000_001, b"ab" * 32, b'[1,"c",2]', None),
            (3, 1_767_225_600_000_002, b"ab" * 32, b'[null,"c",3]', b"{}")]
    for row in rows:
        assert csv_lines([row]) is None


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
@pytest.mark.parametrize(("column", "value"), [("username", "X'00ff41'"), ("ts", "'soon'"),
                                               ("seq", "'third'")])
def test_a_value_of_the_wrong_type_still_exports_and_fails_its_check(
        tmp_path: Path, sqlite_log: AuditLog, keyring: Keyring, trusted: TrustedKeys,
        fmt: str, column: str, value: str) -> None:
    """SQLite lets an edit put a BLOB in a text column (``json_array`` refuses it) or text
    in an integer one: the export still completes, rendered by the reference path and
    equal to it, and the auditor's offline check names the edited record's line (an integer
    cell that is not one fails as no record at all)."""
    ids = [sqlite_log.record(event(n)) for n in range(9)]
    engine: Engine = sqlite_log.store.engine  # type: ignore[attr-defined]
    sql(engine, f"UPDATE audit_events SET {column} = {value} WHERE id = :id", id=ids[4])
    fast = export(sqlite_log, fmt, rendered=True, batch=3)
    assert fast == export(sqlite_log, fmt, rendered=False, batch=3)
    path = tmp_path / f"edited.{fmt}"
    path.write_text(fast, encoding="utf-8", newline="")
    if column == "username":  # a text cell: the file reads, only the record's MAC fails
        verify_export(path, trusted=trusted)
    with pytest.raises(ExportInvalid) as caught:
        verify_export(path, trusted=trusted, chain_keys=keyring.keys)
    assert caught.value.line == 5 + (fmt == "csv")  # the header is line 1 of a CSV


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_text_that_is_not_utf8_fails_the_export_closed(tmp_path: Path, sqlite_log: AuditLog,
                                                       keyring: Keyring, trusted: TrustedKeys,
                                                       fmt: str) -> None:
    """A hand edit can store bytes that are not UTF-8 as text. SQLite hands the fast path
    bytes, which it must not copy into the file: the export fails, as the database driver
    fails on the reference path, and verification names the record."""
    from authgate.audit.errors import RecordAltered
    from authgate.audit.verify import verify_store
    from authgate.core.errors import StorageError

    ids = [sqlite_log.record(event(n)) for n in range(9)]
    engine: Engine = sqlite_log.store.engine  # type: ignore[attr-defined]
    sql(engine, "UPDATE audit_events SET username = CAST(X'41ff42' AS TEXT) WHERE id = :id",
        id=ids[4])
    for rendered in (True, False):
        with pytest.raises(StorageError):
            export(sqlite_log, fmt, rendered=rendered, batch=3)
    with pytest.raises(RecordAltered) as caught:
        verify_store(sqlite_log.store, keyring=keyring, trusted=trusted)  # type: ignore[arg-type]
    assert caught.value.record_id == ids[4]


@pytest.mark.parametrize(("column", "value"), [("v", "2.0"), ("seq", "5.5"), ("seq", "'7'"),
                                               ("v", "'two'"), ("seq", "'-3'"),
                                               ("seq", str(2**63 - 1)), ("ts", "1.5e15")])
def test_a_number_edited_in_v_seq_or_ts_exports_as_the_reference(
        sqlite_log: AuditLog, column: str, value: str) -> None:
    """A CSV body's bare ``v`` and ``seq`` cells are rendered by the database only when one
    ``typeof(v + seq)`` says both are integers (a REAL in either makes the sum REAL, a sum
    past 2^63 too); text there is rendered as the reference renders it (a quoted cell,
    neutralised if it starts like a formula); ``ts`` is checked apart. Each line and the
    manifest equal the reference."""
    ids = [sqlite_log.record(event(n)) for n in range(9)]
    engine: Engine = sqlite_log.store.engine  # type: ignore[attr-defined]
    sql(engine, f"UPDATE audit_events SET {column} = {value} WHERE id = :id", id=ids[4])
    for batch in (1, 3):
        fast = export(sqlite_log, "csv", rendered=True, batch=batch)
        assert fast == export(sqlite_log, "csv", rendered=False, batch=batch)


@pytest.mark.parametrize("column", ["v", "seq", "ts"])
def test_an_integer_column_edited_to_a_fraction_exports_as_edited(
        sqlite_log: AuditLog, column: str) -> None:
    """The reference JSON line printed integer columns with ``%d``: a ``seq`` edited from 5
    to 5.5 was exported as 5, so the exported record looked as sealed (found by the helper
    that sped up exports). Each renderer shows what the database holds, on both paths."""
    ids = [sqlite_log.record(event(n)) for n in range(5)]
    engine: Engine = sqlite_log.store.engine  # type: ignore[attr-defined]
    sql(engine, f"UPDATE audit_events SET {column} = {column} + 0.5 WHERE id = :id", id=ids[2])
    for rendered in (True, False):
        line = export(sqlite_log, "jsonl", rendered=rendered, batch=1).splitlines()[2]
        assert re.search(rf'"{column}":\d+\.5\b', line), line
