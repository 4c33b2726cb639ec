"""An insider with database access attacks copies of a real trail (issue 16).

A trail is written once per module the way the gateway writes it: three gateway runs (one
chain each, closed at exit), Ed25519-signed checkpoints every 50 records of a chain, the
sealed ``audit.checkpoint`` record after each. Every test tampers a *copy* of that SQLite
file with plain SQL, as someone holding the database but not authgate's keys would, and
runs ``authgate audit verify`` with ``--jobs 1`` and ``--jobs 4``: exit 1 with the kind and
location of the damage (the same whatever ``--jobs``), exit 0 for the untouched copy, exit
2 only when the check could not run.
"""
from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from authgate.audit.checkpoints import generate_key_file
from authgate.audit.parallel import id_spans
from authgate.cli import Context
from authgate.cli.audit import audit_group
from authgate.composition.audit import build_audit_log
from authgate.config import load_settings
from authgate.core.clock import FixedClock
from authgate.directory.file import FileDirectory
from authgate.storage.audit_rows import SEALED_FIELDS
from authgate.storage.engine import make_engine, migrate
from authgate.storage.sql_audit import SqlAuditStore
from tests.audit.conftest import event
from tests.conftest import FAST_HASHER, TEST_ENCRYPTION_KEY, TEST_POLICIES, TEST_SECRET

ROOT = Path(__file__).resolve().parents[2]
DAY = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
#: (records, checkpoint at the end) per gateway run; run n writes on day n
RUNS = ((120, False), (150, True), (130, False))


class SteppingClock(FixedClock):
    """One second per reading: every record has its own, predictable time."""

    def now(self) -> datetime:
        self.advance(seconds=1)
        return super().now()


@dataclass(frozen=True)
class Trail:
    root: Path
    db: Path
    signing_key: Path
    users: Path


def _config(root: Path, db: Path, trail: Trail) -> Path:
    path = root / "authgate.yaml"
    path.write_text(yaml.safe_dump({
        "server": {"public_url": "https://auth.city.test"},
        "storage": {"url": f"sqlite:///{db}"},
        "directory": {"file": {"path": str(trail.users)}},
        "policy": {"path": str(TEST_POLICIES), "require_approval": False},
        "audit": {"signing_key_file": str(trail.signing_key), "checkpoint_every": 50},
        "secrets": {"session_key": TEST_SECRET, "audit_key": "c" * 40,
                    "encryption_keys": [TEST_ENCRYPTION_KEY]},
    }))
    return path


def _write_runs(trail: Trail, config: Path) -> None:
    settings = load_settings(config)
    for day, (count, checkpoint) in enumerate(RUNS):
        engine = make_engine(settings.storage.url)
        log = build_audit_log(settings, engine, SteppingClock(DAY + timedelta(days=day)),
                              close_on_exit=False)
        for n in range(count):
            log.record(event(n))
        if checkpoint:
            log.checkpoint()
        log.close()
        engine.dispose()


@pytest.fixture(scope="module")
def trail(tmp_path_factory: pytest.TempPathFactory) -> Trail:
    root = tmp_path_factory.mktemp("trail")
    users = root / "users.yaml"
    FileDirectory(users, hasher=FAST_HASHER).add_user("alice", "alice's long password")
    made = Trail(root, root / "trail.db", root / "signing.pem", users)
    generate_key_file(made.signing_key)
    migrate(f"sqlite:///{made.db}")
    _write_runs(made, _config(root, made.db, made))
    conn = sqlite3.connect(made.db)  # fold the -wal into the file: copies take it whole
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return made


@dataclass
class Copy:
    db: Path
    config: Path

    def sql(self, *statements: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Tamper as an insider would: the sqlite3 module, no authgate code, no keys."""
        conn = sqlite3.connect(self.db)
        try:
            rows: list[tuple[Any, ...]] = []
            for statement in statements:
                rows = conn.execute(statement, params).fetchall()
            conn.commit()
            return rows
        finally:
            conn.close()

    def verify(self, *args: str, jobs: int = 1) -> tuple[int, dict[str, Any], str]:
        """``authgate audit verify --json``: exit code, the report, and the plain text."""
        runner = CliRunner()
        result = runner.invoke(audit_group, ["verify", "--jobs", str(jobs), "--json", *args],
                               obj=Context(str(self.config)))
        assert result.exception is None or isinstance(result.exception, SystemExit), (
            result.output, result.exception)
        report = json.loads(result.stdout)
        text = runner.invoke(audit_group, ["verify", "--jobs", str(jobs), *args],
                             obj=Context(str(self.config)))
        return result.exit_code, report, text.output


@pytest.fixture
def copy(trail: Trail, tmp_path: Path) -> Copy:
    db = tmp_path / "copy.db"
    shutil.copyfile(trail.db, db)
    return Copy(db, _config(tmp_path, db, trail))


def chains(copy: Copy) -> list[str]:
    """The chain of each gateway run, in the order they were written."""
    return [r[0] for r in copy.sql("SELECT chain_id FROM audit_events GROUP BY chain_id "
                                   "ORDER BY MIN(id)")]


def damage_of(copy: Copy, *args: str) -> dict[str, Any]:
    """The damage found with --jobs 1, asserting --jobs 4 finds exactly the same."""
    found = []
    for jobs in (1, 4):
        code, report, text = copy.verify(*args, jobs=jobs)
        assert code == 1, (jobs, report, text)
        assert report["verdict"] == "damaged" and "DAMAGED" in text, text
        found.append(report["damage"])
    assert found[0] == found[1]
    return found[0]  # type: ignore[no-any-return]


#: what an insider can put in a column: text, a BLOB, NULL, huge and negative integers,
#: and text that is not UTF-8
NOT_UTF8 = "CAST(x'c328' AS TEXT)"
VALUES = ["'text'", "x'00ff'", "NULL", "9223372036854775807", "-5", NOT_UTF8]


# -- the untouched copy -------------------------------------------------------------------
@pytest.mark.parametrize("jobs", [1, 4])
def test_untouched_copy_is_intact(copy: Copy, jobs: int) -> None:
    code, report, text = copy.verify(jobs=jobs)
    assert code == 0, (report, text)
    assert report["verdict"] == "intact" and report["damage"] is None
    written = sum(n for n, _ in RUNS)
    assert report["records"] >= written + 3  # and checkpoint and close records
    assert report["chains"]["total"] == 3 and report["chains"]["open"] == 0
    assert report["checkpoints"]["count"] >= 8
    assert report["period"]["first"].startswith("2026-03-02T08:00")
    assert report["not_covered"]["records"] >= 1  # run 3 wrote after the newest checkpoint
    assert "intact:" in text and "not covered" in text.lower()


# -- 1. wiping -------------------------------------------------------------------------------
def test_emptied_tables_are_wiped_not_intact(copy: Copy) -> None:
    copy.sql("DELETE FROM audit_events", "DELETE FROM audit_chains",
             "DELETE FROM audit_checkpoints")
    assert damage_of(copy)["kind"] == "wiped"


def test_copy_without_its_wal_file_is_wiped(trail: Trail, tmp_path: Path) -> None:
    """The gateway is running: its records are in ``-wal``; a plain ``cp`` of the main file
    leaves them behind."""
    live_db = tmp_path / "live.db"
    migrate(f"sqlite:///{live_db}")
    settings = load_settings(_config(tmp_path, live_db, trail))
    engine = make_engine(settings.storage.url)
    log = build_audit_log(settings, engine, SteppingClock(DAY), close_on_exit=False)
    try:
        for n in range(60):
            log.record(event(n))
        assert Path(f"{live_db}-wal").stat().st_size > 0
        stale = tmp_path / "stale"
        stale.mkdir()
        shutil.copyfile(live_db, stale / "copy.db")  # without copy.db-wal
        copied = Copy(stale / "copy.db", _config(stale, stale / "copy.db", trail))
        assert damage_of(copied)["kind"] == "wiped"
    finally:
        log.close()
        engine.dispose()


def test_ranged_verify_over_a_deleted_range_is_missing(copy: Copy) -> None:
    run2 = chains(copy)[1]
    since, until = DAY + timedelta(days=1, seconds=40), DAY + timedelta(days=1, seconds=90)
    lo, hi = int(since.timestamp() * 1e6), int(until.timestamp() * 1e6)
    (before,) = copy.sql("SELECT MAX(seq) FROM audit_events WHERE ts < ? AND chain_id = ?",
                         params=(lo, run2))[0]
    (after_id, after_seq) = copy.sql("SELECT id, seq FROM audit_events WHERE ts >= ? "
                                     "ORDER BY id LIMIT 1", params=(hi,))[0]
    copy.sql("DELETE FROM audit_events WHERE ts >= ? AND ts < ?", params=(lo, hi))
    found = damage_of(copy, "--since", since.isoformat(), "--until", until.isoformat())
    assert found["kind"] == "missing"
    assert (found["chain"], found["seq"], found["record_id"]) == (run2, after_seq, after_id)
    assert after_seq > before + 1


def test_ranged_verify_proves_an_untouched_range(copy: Copy) -> None:
    since, until = DAY + timedelta(days=1, seconds=40), DAY + timedelta(days=1, seconds=90)
    lo, hi = int(since.timestamp() * 1e6), int(until.timestamp() * 1e6)
    (inside,) = copy.sql("SELECT COUNT(*) FROM audit_events WHERE ts >= ? AND ts < ?",
                         params=(lo, hi))[0]
    code, report, _ = copy.verify("--since", since.isoformat(), "--until", until.isoformat())
    assert code == 0 and report["records"] == inside >= 45, report
    assert report["chains"] == {"total": 1, "open": 0}
    assert report["period"]["since"].startswith("2026-03-03T08:00:40")


# -- 2. checkpoints deleted to hide a tail cut ----------------------------------------------
def test_latest_checkpoint_deleted(copy: Copy) -> None:
    copy.sql("DELETE FROM audit_checkpoints WHERE seq = (SELECT MAX(seq) FROM "
             "audit_checkpoints)")
    found = damage_of(copy)
    assert found["kind"] == "checkpoint_deleted"
    assert found["record_id"] is not None  # the sealed record of the deleted checkpoint


def test_latest_checkpoint_deleted_with_a_tail_cut(copy: Copy) -> None:
    """Run 2 ended with a checkpoint; cut 104 records of run 3 and the newest checkpoint."""
    copy.sql("DELETE FROM audit_checkpoints WHERE seq = (SELECT MAX(seq) FROM "
             "audit_checkpoints)",
             "DELETE FROM audit_events WHERE id > (SELECT MAX(id) - 104 FROM audit_events)")
    assert damage_of(copy)["kind"] in ("checkpoint_deleted", "truncated")


def test_all_checkpoints_deleted_with_a_tail_cut(copy: Copy) -> None:
    copy.sql("DELETE FROM audit_checkpoints",
             "DELETE FROM audit_events WHERE id > (SELECT MAX(id) - 104 FROM audit_events)")
    found = damage_of(copy)
    assert found["kind"] == "checkpoint_deleted"
    (first,) = copy.sql("SELECT MIN(id) FROM audit_events WHERE event = 'audit.checkpoint'")[0]
    assert found["record_id"] == first


def test_newest_checkpoint_without_its_record_is_a_tail_cut(copy: Copy) -> None:
    """The checkpoint row survives, but the chain was cut back to the head it signed: the
    sealed record written right after it is gone, and with it everything later."""
    (last_cp,) = copy.sql("SELECT MAX(id) FROM audit_events WHERE event = 'audit.checkpoint'")[0]
    copy.sql("DELETE FROM audit_events WHERE id >= ?", params=(last_cp,))
    assert damage_of(copy)["kind"] == "truncated"


def test_a_checkpoint_key_id_edit_is_tampering_not_configuration(copy: Copy) -> None:
    copy.sql("UPDATE audit_checkpoints SET key_id = 'ed25519:00000000deadbeef' WHERE seq = 2")
    found = damage_of(copy)
    assert found["kind"] == "checkpoint_invalid" and found["seq"] == 2


@pytest.mark.parametrize("column", ["seq", "ts", "kind", "key_id", "payload", "signature"])
@pytest.mark.parametrize("value", VALUES)
def test_checkpoint_type_confusion(copy: Copy, column: str, value: str) -> None:
    _loosen(copy, "audit_checkpoints")
    copy.sql(f"UPDATE audit_checkpoints SET {column} = {value} WHERE seq = 3")
    code, report, text = copy.verify()
    assert code == 1, (report, text)
    assert report["damage"]["kind"] in ("checkpoint_invalid", "checkpoint_deleted")


# -- 4. type confusion, read-only copies, determinism --------------------------------------
def _loosen(copy: Copy, table: str) -> None:
    """Drop the NOT NULL constraints, as an insider with the schema in hand can."""
    copy.sql("PRAGMA writable_schema = 1",
             f"UPDATE sqlite_master SET sql = replace(sql, 'NOT NULL', '') "
             f"WHERE name = '{table}'")


@pytest.mark.parametrize("column", [c for c in (*SEALED_FIELDS, "mac")])
@pytest.mark.parametrize("value", VALUES)
def test_type_confusion_in_every_column(copy: Copy, column: str, value: str) -> None:
    _loosen(copy, "audit_events")
    (target,) = copy.sql("SELECT id FROM audit_events WHERE event = 'verify' "
                         "ORDER BY id LIMIT 1 OFFSET 200")[0]
    copy.sql(f"UPDATE audit_events SET {column} = {value} WHERE id = ?", params=(target,))
    found = damage_of(copy)
    assert (found["kind"], found["record_id"]) == ("altered", target), found
    (recorded,) = copy.sql("SELECT reason FROM audit_events WHERE event = 'audit.verify' "
                           "ORDER BY id DESC LIMIT 1")[0]
    assert recorded == "altered"


@pytest.mark.parametrize("column", ["chain_id", "created_ts", "writer", "key_id"])
@pytest.mark.parametrize("value", ["x'00ff'", "NULL", "-5", NOT_UTF8])
def test_chain_registration_type_confusion(copy: Copy, column: str, value: str) -> None:
    """Registrations are not sealed (they only reveal a chain deleted whole): junk in
    them never crashes the check nor makes it "could not check"."""
    _loosen(copy, "audit_chains")
    copy.sql(f"UPDATE audit_chains SET {column} = {value} WHERE rowid = "
             "(SELECT MIN(rowid) FROM audit_chains)")
    for jobs in (1, 4):
        code, report, text = copy.verify(jobs=jobs)
        assert code in (0, 1) and report["verdict"] != "could_not_check", text


def test_read_only_copy_verifies(copy: Copy) -> None:
    """Mode 0444 in a read-only directory: verify cannot write its own record, says so on
    stderr, and the verdict stands (as root, without the capability that ignores file
    modes)."""
    copy.db.chmod(0o444)
    copy.db.parent.chmod(0o555)
    drop = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--inh-caps",
            "-dac_override,-dac_read_search", "--"] if os.geteuid() == 0 else []
    try:
        for jobs in ("1", "4"):
            done = subprocess.run(
                [*drop, sys.executable, "-c", "from authgate.cli import main; main()",
                 "--config", str(copy.config), "audit", "verify", "--jobs", jobs],
                capture_output=True, text=True, timeout=120,
                env={**os.environ, "PYTHONPATH": str(ROOT)})
            assert done.returncode == 0, (done.stdout, done.stderr)
            assert "intact:" in done.stdout
            assert "could not record" in done.stderr
        assert not Path(f"{copy.db}-wal").exists()
    finally:
        copy.db.parent.chmod(0o755)


def _swap(copy: Copy, a: int, b: int) -> None:
    cols = ", ".join((*SEALED_FIELDS, "mac"))
    rows = {r[0]: r[1:] for r in copy.sql(f"SELECT id, {cols} FROM audit_events "
                                          f"WHERE id IN ({a}, {b})")}
    sets = ", ".join(f"{c} = ?" for c in (*SEALED_FIELDS, "mac"))
    conn = sqlite3.connect(copy.db)
    with conn:
        conn.execute(f"UPDATE audit_events SET {sets} WHERE id = ?", (*rows[b], a))
        conn.execute(f"UPDATE audit_events SET {sets} WHERE id = ?", (*rows[a], b))
    conn.close()


@pytest.mark.parametrize("jobs", [2, 4])
def test_swap_at_a_split_point_is_reordered_whatever_jobs(copy: Copy, jobs: int) -> None:
    store = SqlAuditStore(make_engine(f"sqlite:///{copy.db}"))
    spans = id_spans(store, since=None, until=None, jobs=jobs)
    store.engine.dispose()
    seam = spans[1][0]  # the first id of the second worker's span
    _swap(copy, seam - 1, seam)
    reports = [copy.verify(jobs=n)[1]["damage"] for n in (1, jobs, 4)]
    assert reports[0]["kind"] == "reordered" and reports[0]["record_id"] == seam - 1
    assert reports[0] == reports[1] == reports[2]


@pytest.mark.parametrize("attack", [
    "UPDATE audit_events SET username = 'mallory' WHERE id IN (90, 300)",
    "DELETE FROM audit_events WHERE id IN (150, 151, 330)",
    "UPDATE audit_events SET seq = seq + 1000 WHERE id = 222",
    "UPDATE audit_events SET prev = (SELECT mac FROM audit_events WHERE id = 10) "
    "WHERE id = 260",
    "DELETE FROM audit_events WHERE id BETWEEN 1 AND 5",
])
def test_the_verdict_does_not_depend_on_jobs(copy: Copy, attack: str) -> None:
    copy.sql(attack)
    found = [copy.verify(jobs=n)[1]["damage"] for n in (1, 2, 3, 4)]
    assert found[0] is not None and all(f == found[0] for f in found), found


def test_database_down_could_not_check(copy: Copy) -> None:
    """Exit 2 is for a check that could not run, and the report says so."""
    from tests.fixtures.net import free_port

    settings = yaml.safe_load(copy.config.read_text())
    settings["storage"]["url"] = f"postgresql+psycopg://authgate@127.0.0.1:{free_port()}/x"
    copy.config.write_text(yaml.safe_dump(settings))
    result = CliRunner().invoke(audit_group, ["verify", "--json"],
                                obj=Context(str(copy.config)))
    assert result.exit_code == 2, result.output
    assert json.loads(result.stdout)["verdict"] == "could_not_check"
