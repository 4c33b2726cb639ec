"""The outside insider test of issue 16 (an attacker who saw only the docs, with a copy of a
real trail and plain SQL) found ways past ``audit verify``; each is kept here, on copies of
the trail that tests/audit/test_insider.py writes, with ``--jobs 1`` and ``--jobs 4``.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from authgate.cli import Context
from authgate.cli.audit import audit_group
from tests.audit.test_insider import (  # noqa: F401 - its fixtures: trail, copy
    Copy,
    Trail,
    _config,
    chains,
    copy,
    damage_of,
    trail,
)

FORGED_CHAIN = "deadbeef" * 4
#: a copy of record 200 in a chain no writer registered: "an admin reset alice's factors"
FORGE = ("INSERT INTO audit_events (id, ts, event, outcome, reason, username, client_ip, "
         "user_agent, host, path, method, rule_id, policy_digest, request_id, detail, v, "
         "chain_id, seq, key_id, prev, mac) SELECT ?, ts + 5, 'admin.factors_reset', "
         "'success', 'reset', 'alice', client_ip, user_agent, host, path, method, rule_id, "
         f"policy_digest, request_id, detail, v, '{FORGED_CHAIN}', 1, key_id, "
         "'0' || substr(prev, 2), mac FROM audit_events WHERE id = 200")


def _twin(copy: Copy, trail: Trail, jobs: int) -> Copy:
    """Another copy of the tampered copy (a verify run writes its own record into the
    database it checks: each ``--jobs`` gets the same starting point)."""
    root = copy.db.parent / f"jobs{jobs}"
    root.mkdir()
    db = root / "copy.db"
    shutil.copyfile(copy.db, db)
    return Copy(db, _config(root, db, trail))


@pytest.mark.parametrize("at", [0, -1, -(2**63)])
def test_a_record_below_id_1_is_read(copy: Copy, at: int) -> None:
    """F1: a full check scanned ids from 1 up: a forged record at id 0 was never read."""
    copy.sql(FORGE, params=(at,))
    damage = damage_of(copy)
    assert (damage["kind"], damage["record_id"]) == ("forged", at), damage


@pytest.mark.parametrize("at", [2**53 + 1, 2**60 + 1, 2**63 - 513, 2**63 - 1])
def test_a_forged_record_at_a_huge_id_is_read_whatever_jobs(copy: Copy, trail: Trail,
                                                            at: int) -> None:
    """F2: the split points were floats (ids past 2**53 lost their last bits) and a
    one-job scan stopped at 2**62: which records were read depended on ``--jobs``."""
    copy.sql(FORGE, params=(at,))
    found = []
    for jobs in (1, 4):  # each on its own copy: after a row at 2**63-1, SQLite picks
        code, report, text = _twin(copy, trail, jobs).verify(jobs=jobs)  # random ids
        assert code == 1, (jobs, text)
        found.append(report["damage"])
    assert found[0] == found[1]
    assert (found[0]["kind"], found[0]["record_id"]) == ("forged", at), found


@pytest.mark.parametrize("at", [2**53 + 1, 2**63 - 1])
def test_the_newest_record_moved_to_a_huge_id_is_counted_whatever_jobs(
        copy: Copy, trail: Trail, at: int) -> None:
    (top,) = copy.sql("SELECT MAX(id) FROM audit_events")[0]
    copy.sql("UPDATE audit_events SET id = ? WHERE id = ?", params=(at, top))
    counts = set()
    for jobs in (1, 4):
        code, report, text = _twin(copy, trail, jobs).verify(jobs=jobs)
        assert code == 0, (jobs, text)
        counts.add(report["records"])
    assert len(counts) == 1, counts


@pytest.mark.parametrize(("statements", "kind"), [
    (("DROP TABLE audit_events",), "schema_altered"),
    (("DROP TABLE audit_checkpoints",), "schema_altered"),
    (("ALTER TABLE audit_events DROP COLUMN request_id",), "schema_altered"),
    (("ALTER TABLE audit_events RENAME COLUMN mac TO mac2",), "schema_altered"),
    (("DROP TABLE audit_events", "DROP TABLE audit_chains", "DROP TABLE audit_checkpoints"),
     "wiped"),
    (("DELETE FROM audit_events",), "wiped"),
])
def test_schema_edits_and_partial_wipes_are_damage_not_could_not_check(
        copy: Copy, statements: tuple[str, ...], kind: str) -> None:
    """F3: a dropped or renamed table or column gave exit 2 ("could not check"); records
    deleted while the registrations stayed were ``chain_deleted`` for verify's own chain."""
    copy.sql(*statements)
    assert damage_of(copy)["kind"] == kind


def test_an_id_column_that_is_no_longer_the_row_number_is_schema_altered(copy: Copy) -> None:
    """Second outside test, F1: ``id INT`` instead of ``INTEGER`` (no longer SQLite's row
    number) took a forged row at id 'zzz' that a one-job scan never read (intact) and that
    crashed a parallel one."""
    (create,) = copy.sql("SELECT sql FROM sqlite_master WHERE name = 'audit_events'")[0]
    assert "id INTEGER NOT NULL" in create
    copy.sql("ALTER TABLE audit_events RENAME TO old_events",
             "DROP INDEX ix_audit_ts", "DROP INDEX ix_audit_username_ts",
             create.replace("id INTEGER NOT NULL", "id INT NOT NULL"),
             "INSERT INTO audit_events SELECT * FROM old_events", "DROP TABLE old_events")
    copy.sql(FORGE.replace("SELECT ?,", "SELECT 'zzz',"))
    damage = damage_of(copy)
    assert damage["kind"] == "schema_altered" and "audit_events.id" in damage["detail"], damage


@pytest.mark.parametrize("which", ["first", "middle"])
def test_a_record_moved_to_a_later_id_is_reordered_whatever_jobs(copy: Copy,
                                                                  which: str) -> None:
    """Second outside test, F2/F3: a record moved to a later id read as ``missing`` or
    ``head_cut`` (it is still there), and as ``reordered`` or ``head_cut`` by ``--jobs``."""
    chain = chains(copy)[1]
    ids = [r[0] for r in copy.sql("SELECT id FROM audit_events WHERE chain_id = ? "
                                  "ORDER BY id", params=(chain,))]
    moved = ids[0] if which == "first" else ids[len(ids) // 2]
    (top,) = copy.sql("SELECT MAX(id) FROM audit_events")[0]
    copy.sql("UPDATE audit_events SET id = ? WHERE id = ?", params=(top + 500, moved))
    damage = damage_of(copy)
    assert (damage["kind"], damage["chain"]) == ("reordered", chain), damage


def test_a_forged_record_with_a_made_up_key_id_is_forged(copy: Copy) -> None:
    """Second outside test, F9: a record in a chain no writer registered, under a key id
    nobody configured, read as "add the old key" (a configuration problem)."""
    (top,) = copy.sql("SELECT MAX(id) FROM audit_events")[0]
    copy.sql(FORGE.replace(" key_id, '0' ||", " 'ffffffffffffffff', '0' ||"),
             params=(top + 1,))
    damage = damage_of(copy)
    assert (damage["kind"], damage["record_id"]) == ("forged", top + 1), damage


def test_one_whole_chain_deleted_is_chain_deleted(copy: Copy) -> None:
    """The other chains stay: not a wiped trail, the deleted chain by name."""
    gone = chains(copy)[1]
    copy.sql("DELETE FROM audit_events WHERE chain_id = ?", params=(gone,))
    damage = damage_of(copy)
    assert (damage["kind"], damage["chain"]) == ("chain_deleted", gone), damage


@pytest.mark.parametrize("edit", [
    "UPDATE audit_checkpoints SET seq = -seq WHERE seq IN (2, 3); UPDATE audit_checkpoints "
    "SET seq = CASE seq WHEN -2 THEN 3 ELSE 2 END WHERE seq < 0",
    "INSERT INTO audit_checkpoints (seq, ts, kind, key_id, payload, signature) SELECT "
    "seq + 1000, ts, kind, key_id, payload, signature FROM audit_checkpoints "
    "ORDER BY seq DESC LIMIT 1",
    "UPDATE audit_checkpoints SET seq = 9223372036854775807 WHERE seq = 2",
    "UPDATE audit_checkpoints SET signature = upper(signature) WHERE seq = 2",
    "UPDATE audit_checkpoints SET signature = signature || ' ' WHERE seq = 2",
])
def test_checkpoint_edits_are_invalid_at_the_edited_checkpoint(copy: Copy, edit: str) -> None:
    """Swapped, duplicated or renumbered checkpoints read as "checkpoint 2 missing (found
    2)"; a signature re-spelt in upper case verified and was blamed on the next one."""
    for statement in edit.split("; "):
        copy.sql(statement)
    damage = damage_of(copy)
    assert damage["kind"] == "checkpoint_invalid", damage
    assert damage["seq"] is not None and damage["seq"] not in (1, 4), damage


def test_an_empty_witness_is_could_not_check(copy: Copy, tmp_path: Path) -> None:
    empty = tmp_path / "witness.jsonl"
    empty.write_text("")
    code, report, _text = copy.verify("--witness", str(empty))
    assert code == 2 and report["verdict"] == "could_not_check", report
    assert "holds no checkpoint" in report["error"]


# -- exports -------------------------------------------------------------------------------
def _export(copy: Copy, tmp_path: Path, fmt: str) -> tuple[Path, Path]:
    runner = CliRunner()
    out = tmp_path / f"export.{fmt}"
    done = runner.invoke(audit_group, ["export", "--format", fmt, "-o", str(out)],
                         obj=Context(str(copy.config)))
    assert done.exit_code == 0, done.output
    key = tmp_path / "public.pem"
    shown = runner.invoke(audit_group, ["public-key"], obj=Context(str(copy.config)))
    key.write_text(shown.stdout)
    return out, key


def _check_export(path: Path, key: Path) -> tuple[int, str]:
    done = CliRunner().invoke(audit_group, ["verify", "--export", str(path), "--public-key",
                                            str(key)], obj=Context(None))
    return done.exit_code, done.output


def _edit_manifest(path: Path, change: object) -> None:
    lines = path.read_bytes().splitlines(keepends=True)
    manifest = json.loads(lines[-1])
    change(manifest["manifest"])  # type: ignore[operator]
    lines[-1] = json.dumps(manifest, separators=(",", ":")).encode() + b"\n"
    path.write_bytes(b"".join(lines))


@pytest.mark.parametrize("attack", ["hmac_key_id", "upper_signature", "spaced_signature",
                                    "no_final_newline"])
def test_an_edited_export_never_verifies_nor_turns_into_could_not_check(
        copy: Copy, tmp_path: Path, attack: str) -> None:
    """F4: a manifest re-labelled as HMAC-signed gave exit 2 although the auditor trusted
    an Ed25519 key; F5: the signature re-spelt, or the last line ending cut, verified."""
    path, key = _export(copy, tmp_path, "jsonl")
    assert _check_export(path, key)[0] == 0
    if attack == "hmac_key_id":
        lines = path.read_bytes().splitlines(keepends=True)
        lines[100] = lines[100].replace(b'"outcome":"', b'"outcome":"x', 1)
        path.write_bytes(b"".join(lines))
        _edit_manifest(path, lambda m: m.update(key_id="hmac:" + "0" * 16))
    elif attack == "upper_signature":
        _edit_manifest(path, lambda m: m.update(signature=m["signature"].upper()))
    elif attack == "spaced_signature":
        _edit_manifest(path, lambda m: m.update(signature=m["signature"] + " "))
    else:
        path.write_bytes(path.read_bytes()[:-1])
    code, text = _check_export(path, key)
    assert code == 1 and "DAMAGED" in text, text


@pytest.mark.parametrize("edit", [
    lambda line: line.replace(b"\n", b" \n"),                      # a space after
    lambda line: line[:-2] + b',"x":1}\n',                          # an outer key added
    lambda line: line.replace(b'{"manifest":{', b'{"manifest":{"count":1,', 1),  # repeated
    lambda line: json.dumps(json.loads(line)).encode() + b"\n",     # re-serialised
])
def test_a_manifest_line_is_accepted_only_as_written(copy: Copy, tmp_path: Path,
                                                      edit: object) -> None:
    """Second outside test, F4: spaces, added or repeated keys (a first-wins parser reads
    another count) and a re-serialised manifest verified."""
    path, key = _export(copy, tmp_path, "jsonl")
    lines = path.read_bytes().splitlines(keepends=True)
    lines[-1] = edit(lines[-1])  # type: ignore[operator]
    path.write_bytes(b"".join(lines))
    code, text = _check_export(path, key)
    assert code == 1 and "manifest_invalid" in text, text


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_a_line_no_exporter_writes_is_damage_not_a_traceback(copy: Copy, tmp_path: Path,
                                                             fmt: str) -> None:
    """Second outside test, F5: 1,500 nested brackets, or a CSV cell past the csv module's
    field limit, crashed the verifier."""
    path, key = _export(copy, tmp_path, fmt)
    lines = path.read_bytes().splitlines(keepends=True)
    lines[5] = (b"[" * 1500 + b"\n") if fmt == "jsonl" else (b'"' + b"x" * 200_000 + b'"\r\n')
    path.write_bytes(b"".join(lines))
    code, text = _check_export(path, key)
    assert code == 1 and "DAMAGED" in text and "Traceback" not in text, text


def test_a_csv_export_without_its_last_line_ending_is_damaged(copy: Copy,
                                                              tmp_path: Path) -> None:
    path, key = _export(copy, tmp_path, "csv")
    assert _check_export(path, key)[0] == 0
    path.write_bytes(path.read_bytes()[:-2])
    code, text = _check_export(path, key)
    assert code == 1 and "DAMAGED" in text, text
