"""Tamper with the real database in every way; verification finds each (ASVS 7.3.3)."""
from __future__ import annotations

import hmac

import pytest
from sqlalchemy import Engine

from authgate.audit.chain import Keyring, seal
from authgate.audit.checkpoints import TrustedKeys
from authgate.audit.errors import (
    ChainHeadCut,
    ChainTruncated,
    CheckpointInvalid,
    RecordAltered,
    RecordForged,
    RecordsMissing,
    RecordsReordered,
    RecordUnsealed,
    TrailWiped,
    UnknownKeyId,
)
from authgate.audit.log import AuditLog
from authgate.storage.audit_rows import ROW_COLUMNS
from tests.audit.conftest import check, event, insert_sealed, sql, write

COLUMNS = ", ".join(ROW_COLUMNS[1:])


def test_intact_trail_verifies(audit_log: AuditLog, keyring: Keyring,
                               trusted: TrustedKeys) -> None:
    write(audit_log, 30)
    audit_log.checkpoint()
    write(audit_log, 5)
    trail = check(audit_log, keyring, trusted)
    assert trail.records == 36  # 35 events and the checkpoint record, in one chain
    assert trail.checkpoints == 1 and len(trail.chains) == 1
    assert trail.unanchored_tail == 6


def test_edit_a_field(engine: Engine, audit_log: AuditLog, keyring: Keyring,
                      trusted: TrustedKeys) -> None:
    ids = write(audit_log, 20)
    sql(engine, "UPDATE audit_events SET outcome = 'deny' WHERE id = :id", id=ids[7])
    with pytest.raises(RecordAltered) as caught:
        check(audit_log, keyring, trusted)
    assert caught.value.record_id == ids[7]


def test_delete_a_middle_row(engine: Engine, audit_log: AuditLog, keyring: Keyring,
                             trusted: TrustedKeys) -> None:
    ids = write(audit_log, 20)
    sql(engine, "DELETE FROM audit_events WHERE id IN (:a, :b)", a=ids[9], b=ids[10])
    with pytest.raises(RecordsMissing) as caught:
        check(audit_log, keyring, trusted)
    assert caught.value.record_id == ids[11]


def test_delete_the_tail_after_a_checkpoint(engine: Engine, audit_log: AuditLog,
                                            keyring: Keyring, trusted: TrustedKeys) -> None:
    ids = write(audit_log, 20)
    audit_log.checkpoint()
    sql(engine, "DELETE FROM audit_events WHERE id >= :id", id=ids[15])
    with pytest.raises(ChainTruncated):
        check(audit_log, keyring, trusted)


def test_insert_a_forged_row(engine: Engine, audit_log: AuditLog, keyring: Keyring,
                             trusted: TrustedKeys) -> None:
    ids = write(audit_log, 10)
    forged = COLUMNS.replace("username", "'mallory'")
    sql(engine, f"INSERT INTO audit_events ({COLUMNS}) SELECT {forged} FROM audit_events "
                "WHERE id = :id", id=ids[4])
    with pytest.raises(RecordForged):
        check(audit_log, keyring, trusted)


def test_append_a_forged_row_at_the_end(engine: Engine, audit_log: AuditLog,
                                        keyring: Keyring, trusted: TrustedKeys) -> None:
    ids = write(audit_log, 10)
    sql(engine, f"INSERT INTO audit_events ({COLUMNS}) SELECT "
                f"{COLUMNS.replace('seq', 'seq + 1').replace('prev', 'mac')} "
                "FROM audit_events WHERE id = :id", id=ids[-1])
    with pytest.raises(RecordAltered):
        check(audit_log, keyring, trusted)


def test_forged_chain_is_refused(engine: Engine, audit_log: AuditLog, keyring: Keyring,
                                 trusted: TrustedKeys) -> None:
    ids = write(audit_log, 3)
    sql(engine, f"INSERT INTO audit_events ({COLUMNS}) SELECT "
                f"{COLUMNS.replace('chain_id', repr('f' * 32))} FROM audit_events "
                "WHERE id = :id", id=ids[0])
    with pytest.raises(RecordForged):
        check(audit_log, keyring, trusted)


def test_swap_two_rows(engine: Engine, audit_log: AuditLog, keyring: Keyring,
                       trusted: TrustedKeys) -> None:
    ids = write(audit_log, 10)
    rows = {r[0]: r for r in sql(engine, f"SELECT id, {COLUMNS} FROM audit_events")}
    for target, source in ((ids[3], ids[6]), (ids[6], ids[3])):
        values = dict(zip(["id", *ROW_COLUMNS[1:]], rows[source], strict=True))
        values["id"] = target
        sets = ", ".join(f"{c} = :{c}" for c in ROW_COLUMNS[1:])
        sql(engine, f"UPDATE audit_events SET {sets} WHERE id = :id", **values)
    with pytest.raises(RecordsReordered) as caught:
        check(audit_log, keyring, trusted)
    assert caught.value.record_id == ids[3]


def test_rewrite_the_whole_chain_without_the_key(engine: Engine, audit_log: AuditLog,
                                                 keyring: Keyring,
                                                 trusted: TrustedKeys) -> None:
    write(audit_log, 10)
    fake = hmac.digest(b"attacker", b"guess", "sha256")
    prev = "0" * 64
    for row in sql(engine, f"SELECT id, {COLUMNS} FROM audit_events ORDER BY id"):
        values = list(row[1:-1])
        values[4] = prev
        values[9] = "mallory"
        mac = seal(fake, values)
        sql(engine, "UPDATE audit_events SET prev = :p, username = 'mallory', mac = :m "
                    "WHERE id = :id", p=prev, m=mac, id=row[0])
        prev = mac
    with pytest.raises(RecordAltered):
        check(audit_log, keyring, trusted)


def test_cut_the_head(engine: Engine, audit_log: AuditLog, keyring: Keyring,
                      trusted: TrustedKeys) -> None:
    ids = write(audit_log, 10)
    sql(engine, "DELETE FROM audit_events WHERE id <= :id", id=ids[2])
    with pytest.raises(ChainHeadCut):
        check(audit_log, keyring, trusted)


def test_delete_a_whole_chain(engine: Engine, audit_log: AuditLog, keyring: Keyring,
                              trusted: TrustedKeys) -> None:
    write(audit_log, 5)
    audit_log.checkpoint()
    sql(engine, "DELETE FROM audit_events WHERE seq > 1")
    with pytest.raises(ChainTruncated):  # all but its first record: a checkpoint saw more
        check(audit_log, keyring, trusted)
    # the only chain gone entirely: nothing is left, so the trail is wiped (issue 16: judged
    # before each chain's end, with or without the registrations)
    sql(engine, "DELETE FROM audit_events")
    with pytest.raises(TrailWiped):
        check(audit_log, keyring, trusted)
    sql(engine, "DELETE FROM audit_chains")
    with pytest.raises(TrailWiped):
        check(audit_log, keyring, trusted)


def test_checkpoints_edited_or_removed(engine: Engine, audit_log: AuditLog, keyring: Keyring,
                                       trusted: TrustedKeys) -> None:
    for _ in range(3):
        write(audit_log, 3)
        audit_log.checkpoint()
    check(audit_log, keyring, trusted)
    sql(engine, "UPDATE audit_checkpoints SET payload = replace(payload, '\"manual\"', "
                "'\"purge\"') WHERE seq = 2")
    with pytest.raises(CheckpointInvalid):
        check(audit_log, keyring, trusted)
    sql(engine, "DELETE FROM audit_checkpoints WHERE seq = 2")
    with pytest.raises(CheckpointInvalid):
        check(audit_log, keyring, trusted)


def test_checkpoint_signed_by_another_key(audit_log: AuditLog, keyring: Keyring) -> None:
    """A key id no configured key knows, on a checkpoint row, is damage (exit 1), never
    "cannot verify": an insider can write any key id (issue 16)."""
    write(audit_log, 3)
    audit_log.checkpoint()
    with pytest.raises(CheckpointInvalid, match="no configured key knows"):
        check(audit_log, keyring, TrustedKeys.build(keyring=keyring, signer=None))


def test_unsealed_record_is_reported(audit_log: AuditLog, keyring: Keyring,
                                     trusted: TrustedKeys) -> None:
    write(audit_log, 3)
    audit_log.store.append(event(99, time=audit_log._clock.now()))  # type: ignore[attr-defined]
    with pytest.raises(RecordUnsealed):
        check(audit_log, keyring, trusted)


def test_key_rotation_keeps_old_records_verifiable(engine: Engine, audit_log: AuditLog,
                                                   keyring: Keyring,
                                                   trusted: TrustedKeys) -> None:
    from authgate.storage.sql_audit import SqlAuditStore
    from tests.audit.conftest import AUDIT_SECRET, TickingClock

    write(audit_log, 5)
    rotated = Keyring.from_secrets("b" * 40, [AUDIT_SECRET])
    newer = AuditLog(SqlAuditStore(engine), TickingClock(), keyring=rotated)
    write(newer, 5)
    assert check(audit_log, rotated, trusted).records == 10
    with pytest.raises(UnknownKeyId):
        check(audit_log, Keyring.from_secrets("b" * 40), trusted)


def test_time_range_and_parallel_verification(engine: Engine, audit_log: AuditLog,
                                              keyring: Keyring, trusted: TrustedKeys) -> None:
    ids = write(audit_log, 60)
    audit_log.checkpoint()
    assert check(audit_log, keyring, trusted, jobs=3).records == 61
    (first_ts,) = sql(engine, "SELECT ts FROM audit_events WHERE id = :id", id=ids[20])[0]
    from authgate.storage.timeconv import from_micros

    part = check(audit_log, keyring, trusted, since=from_micros(first_ts))
    assert part.ranged and part.records == 41
    sql(engine, "DELETE FROM audit_events WHERE id = :id", id=ids[40])
    with pytest.raises(RecordsMissing):
        check(audit_log, keyring, trusted, jobs=3)


def test_mac_edited_into_non_ascii_text(engine: Engine, audit_log: AuditLog,
                                        keyring: Keyring, trusted: TrustedKeys) -> None:
    """A hand-edited MAC column is damage to name, not a crash of the verifier."""
    ids = write(audit_log, 10)
    sql(engine, "UPDATE audit_events SET mac = :m WHERE id = :id", m="é" * 64, id=ids[4])
    with pytest.raises(RecordAltered) as caught:
        check(audit_log, keyring, trusted)
    assert caught.value.record_id == ids[4]


def test_a_sealed_field_holding_the_separator_is_refused(engine: Engine, audit_log: AuditLog,
                                                         keyring: Keyring,
                                                         trusted: TrustedKeys) -> None:
    """Defence in depth for version 1 records (text joined by U+001F): were a writer ever to
    have sealed a raw U+001F (``neutralise`` prevents it), the text could be split into
    columns another way; the verifier refuses the row even though its MAC is right."""
    ids = write(audit_log, 3)
    (chain_id, seq, prev) = sql(engine, "SELECT chain_id, seq, mac FROM audit_events "
                                "WHERE id = :id", id=ids[-1])[0]
    values = (1, chain_id, seq + 1, keyring.current_id, prev, 1_767_225_600_000_000,
              "verify", "allow", "allowed", "alice", "10.1.2.3", "UA/1", "wiki\x1fcity.test",
              "/p", "GET", "staff", "d" * 64, "r-x", "{}")
    insert_sealed(engine, keyring.current, values)
    with pytest.raises(RecordAltered):
        check(audit_log, keyring, trusted)


@pytest.mark.parametrize("key_length", [0, 1, 32, 63, 64, 65, 200])
def test_prekeyed_mac_is_hmac_sha256(key_length: int) -> None:
    """The chain's MAC (RFC 2104 from pre-keyed states) is exactly HMAC-SHA256."""
    import os

    from authgate.audit.chain import PrekeyedMac

    key = os.urandom(key_length)
    mac = PrekeyedMac(key)
    for message in (b"", b"a", os.urandom(63), os.urandom(64), os.urandom(340),
                    os.urandom(5000)):
        assert mac.hexdigest(message) == hmac.new(key, message, "sha256").hexdigest()


def test_a_deleted_range_and_a_wiped_trail_on_both_databases(
        engine: Engine, audit_log: AuditLog, keyring: Keyring, trusted: TrustedKeys) -> None:
    """Issue 16: a ranged check links each chain across the range (a range emptied by
    deletion is ``missing``), and a trail with no record at all is ``wiped``."""
    from authgate.audit.errors import TrailWiped
    from authgate.storage.timeconv import from_micros

    ids = write(audit_log, 40)
    (lo,), (hi,) = (sql(engine, "SELECT ts FROM audit_events WHERE id = :id", id=i)[0]
                    for i in (ids[10], ids[20]))
    since, until = from_micros(lo), from_micros(hi)
    assert check(audit_log, keyring, trusted, since=since, until=until).records == 10
    sql(engine, "DELETE FROM audit_events WHERE id >= :a AND id < :b", a=ids[10], b=ids[20])
    for jobs in (1, 3):
        with pytest.raises(RecordsMissing) as caught:
            check(audit_log, keyring, trusted, since=since, until=until, jobs=jobs)
        assert (caught.value.record_id, caught.value.seq) == (ids[20], 21)
    sql(engine, "DELETE FROM audit_events")
    sql(engine, "DELETE FROM audit_chains")
    with pytest.raises(TrailWiped):
        check(audit_log, keyring, trusted)
