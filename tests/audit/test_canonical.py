"""The canonical form a record's MAC covers (``audit.chain``): version 2 is a compact JSON
array, which the database renders for verification. The database's bytes must be the
writer's for any text a column can hold, records sealed in version 1 must still verify,
and a value the renderer refuses must be reported as damage to that record."""
from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine

from authgate.audit.chain import FORMAT_VERSION, GENESIS, Keyring, canonical
from authgate.audit.checkpoints import TrustedKeys
from authgate.audit.errors import CheckpointDeleted, RecordAltered
from authgate.audit.log import AuditLog
from authgate.audit.verify_scan import CHECKPOINT_EVENT
from authgate.storage.engine import make_engine, migrate
from authgate.storage.sql_audit import SqlAuditStore
from authgate.storage.sql_audit_sealed import canonical_sql
from tests.audit.conftest import TickingClock, check, insert_sealed, sql, write

AWKWARD = ['say "hi"', "back\\slash", "Zürich – ö", "emoji 😀", "", "a,b", "[1,2]",
           "\u2028\u2029", "del\x7f", "tab\there", "line\nbreak", "cr\r", "\x1b[31m",
           "bell\x07", "\x1f", '{"json":"text"}', "null", "5"]


def _sealed_chain(engine: Engine, keyring: Keyring, chain_id: str, version: int,
                  texts: list[str]) -> list[tuple[object, ...]]:
    """A chain written straight into the table, one record per text, the text in every
    text column: what a writer of ``version`` would have sealed."""
    sql(engine, "INSERT INTO audit_chains VALUES (:c, 1, 'test', :k)", c=chain_id,
        k=keyring.current_id)
    prev, written = GENESIS, []
    for seq, t in enumerate(texts, 1):
        values = (version, chain_id, seq, keyring.current_id, prev, 1_767_225_600_000_000 + seq,
                  t, "allow", t, t, t, t, t, t, t, t, t, t, t)
        prev = insert_sealed(engine, keyring.current, values)
        written.append(values)
    return written


def test_version_2_is_compact_json() -> None:
    """The documented form (docs/audit.md), byte for byte."""
    values = (2, "c1", 7, "k1", "p1", 1_767_225_600_000_000, "verify", "allow", "allowed",
              'al"ice', "10.1.2.3", "UA\\1", "zürich.city.test", "/p", "GET", "staff", "d",
              "r", '{"level":"mfa"}')
    assert canonical(values) == ('[2,"c1",7,"k1","p1",1767225600000000,"verify","allow",'
                                 '"allowed","al\\"ice","10.1.2.3","UA\\\\1",'
                                 '"zürich.city.test","/p","GET","staff","d","r",'
                                 '"{\\"level\\":\\"mfa\\"}"]').encode()
    assert canonical((1, *values[1:])) == "\x1f".join(map(str, (1, *values[1:]))).encode()
    assert FORMAT_VERSION == 2


def test_the_database_renders_the_writers_bytes(engine: Engine, keyring: Keyring,
                                                trusted: TrustedKeys,
                                                audit_log: AuditLog) -> None:
    """Text a writer never stores (control characters, NUL on SQLite) too: hand-written rows
    must still read exactly as they were sealed, on both databases."""
    texts = AWKWARD + (["nul\x00byte"] if engine.dialect.name == "sqlite" else [])
    written = _sealed_chain(engine, keyring, "a" * 32, 2, texts)
    store = SqlAuditStore(engine)
    read = [row[-1] for row in store.stream_sealed(batch=5)]
    assert read == [canonical(values) for values in written]
    trail = check(audit_log, keyring, trusted)
    assert trail.records == len(texts) and trail.chains[0].chain_id == "a" * 32


def test_version_1_records_verify_beside_version_2(engine: Engine, keyring: Keyring,
                                                   trusted: TrustedKeys,
                                                   audit_log: AuditLog) -> None:
    """A trail written before the JSON form (version 1) stays verifiable after an upgrade,
    and damage to its records is still found."""
    old = _sealed_chain(engine, keyring, "b" * 32, 1, ["alice", "bob", "carol", "dave"])
    write(audit_log, 5)
    trail = check(audit_log, keyring, trusted)
    assert trail.records == 9 and len(trail.chains) == 2
    versions = {v for (v,) in sql(engine, "SELECT DISTINCT v FROM audit_events")}
    assert versions == {1, 2}
    (target,) = sql(engine, "SELECT id FROM audit_events WHERE chain_id = :c AND seq = 3",
                    c=old[0][1])[0]
    sql(engine, "UPDATE audit_events SET path = '/other' WHERE id = :id", id=target)
    with pytest.raises(RecordAltered) as caught:
        check(audit_log, keyring, trusted)
    assert caught.value.record_id == target


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)  # PostgreSQL text is text
@pytest.mark.parametrize("column", ["username", "detail", "prev"])
def test_a_blob_in_a_sealed_column_is_damage_to_that_record(engine: Engine, audit_log: AuditLog,
                                                            keyring: Keyring,
                                                            trusted: TrustedKeys,
                                                            column: str) -> None:
    """SQLite lets any column hold a BLOB, which ``json_array`` refuses: the verifier still
    names the record instead of failing with a database error."""
    ids = write(audit_log, 20)
    sql(engine, f"UPDATE audit_events SET {column} = X'00ff41' WHERE id = :id", id=ids[11])
    with pytest.raises(RecordAltered) as caught:
        check(audit_log, keyring, trusted)
    assert caught.value.record_id == ids[11]


def test_only_checkpoint_records_come_as_text(engine: Engine, audit_log: AuditLog) -> None:
    """The verifier reads beyond the MAC only the records the store hands over as text
    (``text_event``): on both databases those are exactly the ``audit.checkpoint`` records,
    with the same text the bytes of every other record are; without it, every version 2
    record comes as bytes."""
    write(audit_log, 4)
    audit_log.checkpoint()
    write(audit_log, 3)
    audit_log.checkpoint()
    write(audit_log, 2)
    store = SqlAuditStore(engine)
    marked = list(store.stream_sealed(batch=3, text_event=CHECKPOINT_EVENT))
    plain = list(store.stream_sealed(batch=3))
    checkpoints = {rid for (rid,) in sql(engine, "SELECT id FROM audit_events WHERE "
                                                 "event = 'audit.checkpoint'")}
    assert len(checkpoints) == 2 and len(marked) == len(plain) == 11
    assert {row[0] for row in marked if type(row[-1]) is str} == checkpoints
    assert all(type(row[-1]) is bytes for row in plain)
    for text, raw in zip(marked, plain, strict=True):
        assert text[:-1] == raw[:-1]
        assert (text[-1].encode() if type(text[-1]) is str else text[-1]) == raw[-1]


def test_a_deleted_checkpoint_is_found_from_its_record(engine: Engine, audit_log: AuditLog,
                                                       keyring: Keyring,
                                                       trusted: TrustedKeys) -> None:
    """The sealed ``audit.checkpoint`` record is read (it came as text) on both databases:
    its checkpoint deleted is ``checkpoint_deleted`` at that record, never intact."""
    write(audit_log, 3)
    audit_log.checkpoint()
    write(audit_log, 2)
    check(audit_log, keyring, trusted)
    (record,) = sql(engine, "SELECT id FROM audit_events WHERE event = 'audit.checkpoint'")[0]
    sql(engine, "DELETE FROM audit_checkpoints")
    with pytest.raises(CheckpointDeleted) as caught:
        check(audit_log, keyring, trusted)
    assert caught.value.record_id == record


def test_a_version_1_text_edited_to_start_like_json_is_altered(tmp_path: Path,
                                                                keyring: Keyring,
                                                                trusted: TrustedKeys) -> None:
    """Only JSON starts with ``[``, so a text that does is hashed as version 2 without the
    separator count of version 1: a version 1 record whose ``v`` an insider edited to read
    like JSON (SQLite keeps text in an integer column) fails its MAC, never passes."""
    url = f"sqlite:///{tmp_path / 'v1.db'}"
    migrate(url)
    engine = make_engine(url)
    _sealed_chain(engine, keyring, "c" * 32, 1, ["alice", "bob", "carol"])
    log = AuditLog(SqlAuditStore(engine), TickingClock(), keyring=keyring, checkpoint_every=0)
    check(log, keyring, trusted)
    (target,) = sql(engine, "SELECT id FROM audit_events WHERE seq = 2")[0]
    for forged in ("[1", '[2,"cccc'):
        sql(engine, "UPDATE audit_events SET v = :v WHERE id = :id", v=forged, id=target)
        with pytest.raises(RecordAltered) as caught:
            check(log, keyring, trusted)
        assert caught.value.record_id == target


def test_the_text_event_is_an_event_name() -> None:
    """It is written into the SQL: anything but a dotted lower-case name is refused."""
    assert "event = 'audit.checkpoint'" in canonical_sql(sqlite=True,
                                                           text_event=CHECKPOINT_EVENT)
    for bad in ("x' OR 1=1 --", "Audit", "a b", "'"):
        with pytest.raises(ValueError, match="not an event name"):
            canonical_sql(sqlite=False, text_event=bad)
