"""Witnessed checkpoints (issue 16): an insider with the database cannot make a wiped, cut,
rolled-back or stale trail verify, because every signed checkpoint also left the database.

One real trail is written by the gateway's writer (``build_audit_log``, SQLite in WAL mode,
Ed25519 signing key, ``audit.witness`` configured) in two sessions; each test attacks a copy
with SQL or by copying files, then runs ``authgate audit verify --witness`` as an auditor.
"""
from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from authgate.audit.checkpoints import generate_key_file
from authgate.cli import Context
from authgate.cli.audit import audit_group
from authgate.composition.audit import build_audit_log
from authgate.config import load_settings
from authgate.core.clock import SystemClock
from authgate.storage.engine import make_engine, migrate
from tests.audit.conftest import event
from tests.conftest import TEST_ENCRYPTION_KEY, TEST_POLICIES, TEST_SECRET


@dataclass(frozen=True)
class Trail:
    root: Path
    db: Path  # the trail as written
    older: Path  # a copy taken after the first session (yesterday's backup)
    stale: Path  # the main file copied without its -wal while the second session ran
    witness: Path  # the witness directory
    key: Path


def _config(root: Path, db: Path, key: Path, users_file: Path, **audit: object) -> Path:
    path = root / f"authgate-{db.stem}.yaml"
    path.write_text(yaml.safe_dump({
        "server": {"public_url": "https://auth.city.test"},
        "storage": {"url": f"sqlite:///{db}"},
        "directory": {"file": {"path": str(users_file)}},
        "policy": {"path": str(TEST_POLICIES), "require_approval": False},
        "secrets": {"session_key": TEST_SECRET, "audit_key": "c" * 40,
                    "encryption_keys": [TEST_ENCRYPTION_KEY]},
        "audit": {"signing_key_file": str(key), **audit},
    }))
    return path


def _session(config: Path, first: int, count: int, *, during: object = None) -> None:
    settings = load_settings(config)
    engine = make_engine(settings.storage.url)
    log = build_audit_log(settings, engine, SystemClock(), close_on_exit=False)
    for n in range(first, first + count):
        log.record(event(n))
    if callable(during):
        during()
    log.checkpoint()
    assert log.witness is not None and log.witness.wait_idle(5)
    log.close()
    engine.dispose()


def _backup(src: Path, dst: Path) -> None:
    with sqlite3.connect(src) as a, sqlite3.connect(dst) as b:
        a.backup(b)


@pytest.fixture(scope="module")
def trail(tmp_path_factory: pytest.TempPathFactory) -> Trail:
    root = tmp_path_factory.mktemp("witness")
    users = root / "users.yaml"
    users.write_text("users: {}\n")
    key = root / "signing.pem"
    generate_key_file(key)
    db = root / "trail.db"
    (root / "witness").mkdir()
    config = _config(root, db, key, users, witness="witness", checkpoint_every=15)
    migrate(f"sqlite:///{db}")
    _session(config, 0, 40)
    _backup(db, root / "older.db")
    _session(config, 40, 60,
             during=lambda: shutil.copyfile(db, root / "stale.db"))
    return Trail(root, db, root / "older.db", root / "stale.db", root / "witness", key)


def _copy(trail: Trail, tmp_path: Path, source: Path | None = None) -> tuple[Path, Path]:
    """A copy of the database (``source``: another state of it) and an auditor's config
    for it (no witness configured: the auditor names it)."""
    db = tmp_path / "copy.db"
    _backup(source or trail.db, db)
    users = tmp_path / "users.yaml"
    users.write_text("users: {}\n")
    return db, _config(tmp_path, db, trail.key, users)


def _sql(db: Path, *statements: str) -> None:
    with sqlite3.connect(db) as conn:
        for statement in statements:
            conn.execute(statement)


def verify(config: Path, *args: str, jobs: int = 1) -> tuple[int, str]:
    result = CliRunner().invoke(audit_group, ["verify", "--jobs", str(jobs), *args],
                                obj=Context(str(config)))
    return result.exit_code, result.output


JOBS = pytest.mark.parametrize("jobs", [1, 4])


@JOBS
def test_untouched_copy_is_intact_and_states_the_window(trail: Trail, tmp_path: Path,
                                                        jobs: int) -> None:
    _db, config = _copy(trail, tmp_path)
    code, out = verify(config, "--witness", str(trail.witness), jobs=jobs)
    assert code == 0, out
    assert "the database holds everything up to witnessed checkpoint #" in out, out
    assert "residual window (not covered yet):" in out and "records written after it" in out, out


def test_every_checkpoint_was_witnessed(trail: Trail) -> None:
    lines = (trail.witness / "checkpoints.jsonl").read_text().splitlines()
    with sqlite3.connect(trail.db) as conn:
        stored = conn.execute("SELECT seq, signature FROM audit_checkpoints ORDER BY seq")
        assert [(r["seq"], r["signature"]) for r in map(json.loads, lines)] == list(stored)


@JOBS
def test_wiped_database(trail: Trail, tmp_path: Path, jobs: int) -> None:
    db, config = _copy(trail, tmp_path)
    _sql(db, "DELETE FROM audit_events", "DELETE FROM audit_checkpoints",
         "DELETE FROM audit_chains")
    code, out = verify(config, jobs=jobs)
    assert code == 1 and "wiped:" in out, out  # the database alone: never empty (issue 16)
    code, out = verify(config, "--witness", str(trail.witness), jobs=jobs)
    assert code == 1 and "wiped:" in out, out


@JOBS
def test_tail_cut_with_every_checkpoint_deleted(trail: Trail, tmp_path: Path,
                                                jobs: int) -> None:
    db, config = _copy(trail, tmp_path)
    with sqlite3.connect(db) as conn:
        chain, last = conn.execute("SELECT chain_id, MAX(seq) FROM audit_events GROUP BY "
                                   "chain_id ORDER BY MAX(id) DESC LIMIT 1").fetchone()
    _sql(db, f"DELETE FROM audit_events WHERE chain_id = '{chain}' AND seq > {last - 30}",
         "DELETE FROM audit_checkpoints")
    code, out = verify(config, jobs=jobs)  # the sealed audit.checkpoint records remain
    assert code == 1 and "checkpoint_deleted:" in out, out
    _sql(db, "DELETE FROM audit_events WHERE event = 'audit.checkpoint'")
    code, out = verify(config, "--witness", str(trail.witness), jobs=jobs)
    assert code == 1 and ("truncated:" in out or "missing:" in out), out


@JOBS
def test_latest_checkpoint_deleted_with_later_records_kept(trail: Trail, tmp_path: Path,
                                                           jobs: int) -> None:
    db, config = _copy(trail, tmp_path)
    with sqlite3.connect(db) as conn:
        (newest,) = conn.execute("SELECT MAX(seq) FROM audit_checkpoints").fetchone()
    _sql(db, f"DELETE FROM audit_checkpoints WHERE seq = {newest}")
    code, out = verify(config, "--witness", str(trail.witness), jobs=jobs)
    assert code == 1 and "checkpoint_deleted:" in out and f"checkpoint #{newest}" in out, out


@JOBS
def test_rollback_to_an_older_copy(trail: Trail, tmp_path: Path, jobs: int) -> None:
    _db, config = _copy(trail, tmp_path, trail.older)
    code, out = verify(config, jobs=jobs)
    assert code == 0, out  # yesterday's backup is a valid trail on its own
    code, out = verify(config, "--witness", str(trail.witness), jobs=jobs)
    assert code == 1 and "rolled_back:" in out, out


@JOBS
def test_stale_copy_without_its_wal(trail: Trail, tmp_path: Path, jobs: int) -> None:
    db, config = _copy(trail, tmp_path)
    shutil.copyfile(trail.stale, db)  # the main file only: what the WAL held is lost
    code, out = verify(config, "--witness", str(trail.witness), jobs=jobs)
    assert code == 1 and ("rolled_back:" in out or "wiped:" in out), out


def _edited_witness(trail: Trail, tmp_path: Path, edit: object) -> Path:
    target = tmp_path / "witness.jsonl"
    lines = (trail.witness / "checkpoints.jsonl").read_text().splitlines()
    target.write_text("\n".join(edit(lines)) + "\n")  # type: ignore[operator]
    return target


def test_edited_witness_line_is_damage_of_the_witness(trail: Trail, tmp_path: Path) -> None:
    def edit(lines: list[str]) -> list[str]:
        data = json.loads(lines[1])
        data["payload"] = data["payload"].replace('"kind":"interval"', '"kind":"manual"')
        data["kind"] = "manual"
        return [lines[0], json.dumps(data), *lines[2:]]

    _db, config = _copy(trail, tmp_path)
    code, out = verify(config, "--witness", str(_edited_witness(trail, tmp_path, edit)))
    assert code == 1 and "witness_invalid:" in out and "signature fails" in out, out


def test_witness_of_another_deployment_cannot_be_checked(trail: Trail, tmp_path: Path) -> None:
    other_key = tmp_path / "other.pem"
    generate_key_file(other_key)
    users = tmp_path / "users.yaml"
    users.write_text("users: {}\n")
    (tmp_path / "w").mkdir()
    config = _config(tmp_path, tmp_path / "other.db", other_key, users, witness="w")
    migrate(f"sqlite:///{tmp_path / 'other.db'}")
    _session(config, 0, 5)
    _db, mine = _copy(trail, tmp_path)
    code, out = verify(mine, "--witness", str(tmp_path / "w"))
    assert code == 2 and "cannot verify" in out and "untrusted key" in out, out


def test_anchor_and_export_manifest_as_anchors(trail: Trail, tmp_path: Path) -> None:
    db, config = _copy(trail, tmp_path)
    anchor, export = tmp_path / "anchor.json", tmp_path / "export.jsonl"
    runner = CliRunner()
    result = runner.invoke(audit_group, ["anchor", "-o", str(anchor)], obj=Context(str(config)))
    assert result.exit_code == 0 and "anchor: checkpoint #" in result.output, result.output
    result = runner.invoke(audit_group, ["export", "-o", str(export)], obj=Context(str(config)))
    assert result.exit_code == 0, result.output
    for saved in (anchor, export):
        code, out = verify(config, "--anchor", str(saved))
        assert code == 0 and "witness: 1 checkpoints" in out, out
    with sqlite3.connect(trail.db) as conn:  # the trail's last chain: cut its last two
        chain, last = conn.execute("SELECT chain_id, MAX(seq) FROM audit_events GROUP BY "
                                   "chain_id ORDER BY MAX(id) DESC LIMIT 1").fetchone()
    _sql(db, f"DELETE FROM audit_events WHERE chain_id = '{chain}' AND seq > {last - 2}",
         "DELETE FROM audit_checkpoints WHERE seq = (SELECT MAX(seq) FROM audit_checkpoints)")
    code, out = verify(config)  # the newest checkpoint's sealed record remains
    assert code == 1 and "checkpoint_deleted:" in out, out
    code, out = verify(config, "--anchor", str(anchor))
    assert code == 1 and "checkpoint_deleted:" in out, out


_APPENDER = """
import sys
from authgate.audit.checkpoints import Ed25519Signer, make_checkpoint
from authgate.audit.witness_writer import WitnessWriter
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
signer = Ed25519Signer(Ed25519PrivateKey.generate())
writer = WitnessWriter(sys.argv[1])
heads = {f"{c:032x}": (c, "ab" * 32) for c in range(40)}  # long lines (> PIPE_BUF)
for seq in range(1, 201):
    writer.append(make_checkpoint(signer=signer, seq=seq, previous_signature="", ts=seq,
                                  kind="interval", max_id=seq, heads=heads))
assert writer.wait_idle(30)
writer.close()
"""


def test_two_processes_append_whole_lines(tmp_path: Path) -> None:
    target = tmp_path / "witness.jsonl"
    procs = [subprocess.Popen([sys.executable, "-c", _APPENDER, str(target)])
             for _ in range(2)]
    assert [p.wait(60) for p in procs] == [0, 0]
    lines = target.read_text().splitlines()
    assert len(lines) == 400 and all(json.loads(line)["witness"] == 1 for line in lines)
    assert len(lines[0]) > 4096


@pytest.fixture
def settings(tmp_path: Path, users_file: Path):  # type: ignore[no-untyped-def]
    """The gateway's settings with a witness on a share that is not mounted yet."""
    from tests.conftest import make_settings

    return make_settings(tmp_path, users_file, audit={
        "witness": str(tmp_path / "share" / "witness.jsonl"), "checkpoint_every": 5})


def test_witness_outage_keeps_logins_counts_audits_once_and_catches_up(  # type: ignore[no-untyped-def]
        client, services, tmp_path: Path) -> None:
    from prometheus_client import REGISTRY

    from tests.conftest import verify_headers

    log = services.audit
    failed = REGISTRY.get_sample_value("authgate_audit_witness_failed_total") or 0.0
    for n in range(12):
        log.record(event(n))
    assert log.witness.wait_idle(5)
    assert client.get("/verify", headers=verify_headers("/app/x")).status_code == 401
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.get_json()  # degraded, not down
    assert ready.get_json()["checks"]["audit_witness"].startswith("degraded"), ready.get_json()
    assert (REGISTRY.get_sample_value("authgate_audit_witness_failed_total") or 0) > failed
    (tmp_path / "share").mkdir()  # the share is back
    for n in range(12):
        log.record(event(n))
    assert log.witness.wait_idle(5)
    assert client.get("/readyz").get_json()["checks"]["audit_witness"] == "ok"
    reasons = [e.event.reason for e in log.store.query(event="audit.witness")]
    assert reasons == ["witness_write_failed", "witness_restored"]
    lines = (tmp_path / "share" / "witness.jsonl").read_text().splitlines()
    assert [json.loads(x)["seq"] for x in lines] == [
        row.seq for row in log.store.checkpoints()]  # nothing lost in the outage


def test_idle_gateway_signs_its_last_records_on_a_timer(tmp_path: Path) -> None:
    from datetime import timedelta

    from authgate.audit.chain import Keyring
    from authgate.audit.checkpoints import Ed25519Signer
    from authgate.audit.log import AuditLog
    from authgate.audit.witness_writer import WitnessWriter
    from authgate.storage.sql_audit import SqlAuditStore

    url = f"sqlite:///{tmp_path / 'idle.db'}"
    migrate(url)
    engine = make_engine(url)
    log = AuditLog(SqlAuditStore(engine), SystemClock(), keyring=Keyring.from_secrets("k" * 40),
                   signer=Ed25519Signer.from_file(generate_key_file(tmp_path / "k.pem") and
                                                  tmp_path / "k.pem"),
                   checkpoint_interval=timedelta(milliseconds=300),
                   witness=WitnessWriter(tmp_path))
    log.record(event(1))
    log.record(event(2))
    assert log.store.checkpoints() == []
    from tests.conftest import _checkpoint_timers

    assert len(_checkpoint_timers()) == 1  # found by name: tests/conftest.py cancels it
    import time

    time.sleep(1.0)  # no record follows: the timer signs them
    cps = log.store.checkpoints()
    assert len(cps) == 1 and cps[0].kind == "interval"
    assert log.witness is not None and log.witness.wait_idle(5)
    assert len((tmp_path / "checkpoints.jsonl").read_text().splitlines()) == 1
    time.sleep(0.6)
    assert len(log.store.checkpoints()) == 1  # the checkpoint's own record arms no timer
    log.close()
    engine.dispose()


def test_check_config_witness_findings(tmp_path: Path) -> None:
    from authgate.config import settings_from_mapping
    from authgate.config.audit import AuditSettings, witness_findings

    url = f"sqlite:///{tmp_path / 'db' / 'a.db'}"
    (tmp_path / "db").mkdir()
    assert witness_findings(AuditSettings(witness=str(tmp_path / "db")), url)[0][0] == "warning"
    assert witness_findings(AuditSettings(witness=str(tmp_path / "nowhere" / "w")), url)[0][0] \
        == "error"
    assert witness_findings(AuditSettings(witness=str(tmp_path / "w.jsonl")), url) == []
    relative = settings_from_mapping({"audit": {"witness": "w"}, "mode": "demo"},
                                     base_dir=tmp_path)
    assert relative.audit.witness == str(tmp_path / "w")
