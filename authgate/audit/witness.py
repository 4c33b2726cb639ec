"""Witnessed checkpoints: signed checkpoints kept outside the database (ASVS 7.3.3).

An insider who can write to the database can delete its newest records *and* the
checkpoints that saw them, restore yesterday's copy, or empty it: the database alone then
looks intact. So every signed checkpoint is also appended, as one JSON line, to
``audit.witness`` (a file or directory that can live on another host: a mounted share, or
a syslog receiver that writes a file), and an auditor may keep an *anchor* (one such line,
``authgate audit anchor``, or an export manifest, which embeds the latest checkpoint).
``check_witness`` proves the database still holds every witnessed checkpoint and every
chain up to the head each one signed; the damage kinds are those of ``audit.errors``.

A witness line carries the checkpoint exactly as signed (``payload`` and ``signature``,
RFC 8032 Ed25519 with the deployment's key), so a verifier needs the public key only; the
payload names the SHA-256 of the previous checkpoint's signature. A line signed by a key
the verifier does not trust is refused (``UntrustedKey``: cannot check, exit 2); a line
whose signature fails is damage to the witness (``witness_invalid``, exit 1).
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from authgate.audit.checkpoints import Checkpoint, TrustedKeys, verify_checkpoints
from authgate.audit.errors import (
    ChainDeleted,
    ChainTruncated,
    ChainWiped,
    CheckpointDeleted,
    CheckpointInvalid,
    RecordAltered,
    RolledBack,
    WitnessInvalid,
)
from authgate.storage.audit_rows import AuditFilter
from authgate.storage.interfaces import AuditStore

#: the file a witness *directory* holds (a file path is used as is)
WITNESS_FILE_NAME = "checkpoints.jsonl"
WITNESS_FORMAT = 1
#: the event ``authgate restore`` records (``Restore``)
RESTORE_EVENT = "audit.restore"


def witness_target(path: str | Path) -> Path:
    """The file lines are appended to: ``PATH/checkpoints.jsonl`` for a directory."""
    target = Path(path)
    return target / WITNESS_FILE_NAME if target.is_dir() else target


def witness_line(cp: Checkpoint) -> bytes:
    """One witness line: the checkpoint as signed, plus readable copies of its fields."""
    data = cp.data
    body = {"witness": WITNESS_FORMAT, "seq": cp.seq, "ts": cp.ts, "kind": cp.kind,
            "key_id": cp.key_id, "prev": data.get("prev"), "payload": cp.payload,
            "signature": cp.signature}
    return (json.dumps(body, sort_keys=True, separators=(",", ":")) + "\n").encode()


@dataclass(frozen=True)
class Witnessed:
    """A checkpoint read from a witness or anchor, and where it was read."""

    checkpoint: Checkpoint
    source: str

    @property
    def seq(self) -> int:
        return self.checkpoint.seq

    def heads(self) -> dict[str, tuple[int, str]]:
        raw = self.checkpoint.data.get("heads", {})
        return {str(c): (int(s), str(m)) for c, (s, m) in raw.items()}


def read_witness(path: str | Path) -> list[Witnessed]:
    """Every checkpoint in a witness file, or in every ``*.jsonl`` of a directory."""
    target = Path(path)
    files = sorted(target.glob("*.jsonl")) if target.is_dir() else [target]
    found: list[Witnessed] = []
    for file in files:
        for number, line in enumerate(file.read_bytes().splitlines(), start=1):
            if line.strip():
                found.append(_parse(line, f"{file}:{number}"))
    return found


def read_anchor(path: str | Path) -> list[Witnessed]:
    """An anchor: a witness line (``authgate audit anchor``), or an export (JSON lines or
    CSV) whose manifest names the latest checkpoint."""
    lines = [ln for ln in Path(path).read_bytes().splitlines() if ln.strip()]
    if not lines:
        raise WitnessInvalid(f"{path}: empty anchor")
    last = lines[-1]
    if last.startswith(b"#manifest,"):
        return [_from_manifest(_csv_manifest(last, path), f"{path}: manifest")]
    if last.startswith(b'{"manifest"'):
        return [_from_manifest(_json(last, str(path)).get("manifest"), f"{path}: manifest")]
    return [_parse(line, f"{path}:{n}") for n, line in enumerate(lines, start=1)]


def _csv_manifest(line: bytes, path: str | Path) -> Any:
    import csv
    import io

    cells = next(csv.reader(io.StringIO(line.decode("utf-8", "replace"))))
    return _json(cells[1].encode() if len(cells) > 1 else b"", f"{path}: manifest")


def _from_manifest(manifest: Any, source: str) -> Witnessed:
    if not isinstance(manifest, dict) or not isinstance(manifest.get("checkpoint"), dict):
        raise WitnessInvalid(f"{source}: the export names no checkpoint")
    return _parse(json.dumps(manifest["checkpoint"]).encode(), source)


def _json(line: bytes, source: str) -> Any:
    try:
        return json.loads(line)
    except ValueError as exc:
        raise WitnessInvalid(f"{source}: not a witness line") from exc


def _parse(line: bytes, source: str) -> Witnessed:
    """A line's checkpoint; its readable fields must be the ones its payload signs."""
    data = _json(line, source)
    try:
        cp = Checkpoint(seq=data["seq"], ts=data["ts"], kind=data["kind"],
                        key_id=data["key_id"], payload=data["payload"],
                        signature=data["signature"])
        signed = cp.data
    except (KeyError, TypeError, ValueError) as exc:
        raise WitnessInvalid(f"{source}: not a witness line") from exc
    if not all(type(v) is str for v in (cp.kind, cp.key_id, cp.payload, cp.signature)) or (
            signed.get("seq"), signed.get("ts"), signed.get("kind")) != (cp.seq, cp.ts, cp.kind):
        raise WitnessInvalid(f"{source}: fields differ from the signed payload", seq=cp.seq)
    return Witnessed(cp, source)


@dataclass(frozen=True)
class WitnessVerdict:
    """What the witness proved: the database holds everything up to ``newest``."""

    witnessed: int
    newest: Checkpoint | None
    #: chain → the highest seq a witnessed checkpoint signed
    heads: dict[str, int]
    #: explained restores: what each ``audit.restore`` record set back (see ``Restore``)
    restores: tuple[str, ...] = ()

    def describe(self) -> str:
        explained = "".join(f"\nexplained restore: {r}" for r in self.restores)
        if self.newest is None:
            return ("witness: holds no checkpoint; nothing proven beyond the database itself"
                    + explained)
        return (f"witness: {self.witnessed} checkpoints; the database holds everything up to "
                f"witnessed checkpoint #{self.newest.seq} ({_time(self.newest.ts)})"
                + explained)


@dataclass(frozen=True)
class Restore:
    """An ``audit.restore`` record (``authgate restore``): at ``ts`` the database was set
    back to a backup whose newest checkpoint is ``checkpoint``. Witnessed checkpoints
    after it and older than ``ts`` are the rolled-back branch: explained (reported, with
    what was lost), not silent damage. The record is chained and MAC'd like any other, so
    only a holder of the audit key can write one, and it stays in the trail."""

    checkpoint: int
    ts: int

    def explains(self, cp: Checkpoint) -> bool:
        return cp.seq > self.checkpoint and cp.ts < self.ts


def restores_in(store: AuditStore) -> list[Restore]:
    """The database's ``audit.restore`` records, oldest first."""
    found = []
    for row in store.stream_rows(AuditFilter(event=RESTORE_EVENT), batch=500):
        detail = json.loads(row.detail)
        if str(detail.get("checkpoint", "")).isdigit():
            found.append(Restore(int(detail["checkpoint"]), int(row.ts)))
    return found


def _set_aside(witnessed: Sequence[Witnessed], restores: Sequence[Restore],
               trusted: TrustedKeys) -> tuple[list[Witnessed], tuple[str, ...]]:
    """The witnessed checkpoints a recorded restore does not explain, and one line per
    restore naming what it set back. Every line's signature is checked either way."""
    _authentic([w for w in witnessed if any(r.explains(w.checkpoint) for r in restores)],
               trusted, unique=False)
    kept, notes = list(witnessed), []
    for restore in restores:
        lost = [w.checkpoint for w in kept if restore.explains(w.checkpoint)]
        kept = [w for w in kept if not restore.explains(w.checkpoint)]
        if lost:
            notes.append(f"at {_time(restore.ts)} the database was restored to checkpoint "
                         f"#{restore.checkpoint}; witnessed checkpoints "
                         f"#{min(c.seq for c in lost)}-#{max(c.seq for c in lost)} (up to "
                         f"{_time(max(c.ts for c in lost))}) and the records they signed "
                         "were rolled back")
    return kept, tuple(notes)


def check_witness(store: AuditStore, *, trusted: TrustedKeys,
                  witnessed: Sequence[Witnessed]) -> WitnessVerdict:
    """Raise the ``ChainDamage`` for the first thing the database lost or changed that the
    witness saw; ``UntrustedKey`` for a line by a key not trusted here (cannot check).
    What a recorded restore set back is reported in the verdict instead (``Restore``)."""
    witnessed, notes = _set_aside(witnessed, restores_in(store), trusted)
    by_seq = _authentic(witnessed, trusted)
    if not by_seq:
        return WitnessVerdict(0, None, {}, notes)
    newest = by_seq[max(by_seq)]
    stored = {row.seq: row for row in store.checkpoints()}
    for seq, cp in sorted(by_seq.items()):
        row = stored.get(seq)
        if row is not None and row.signature != cp.signature:
            raise CheckpointInvalid(f"the database's checkpoint #{seq} is not the one "
                                    "witnessed", seq=seq)
    anchors = _anchors(verify_checkpoints(list(stored.values()), trusted=trusted).anchors,
                       by_seq)
    heads = _witnessed_heads(by_seq)
    short = _short_chains(store, heads, anchors)
    if short and len(short) == len(heads) and all(c.last == 0 for c in short) and (
            _oldest_ts(store) > min(cp.ts for cp in by_seq.values())):
        raise ChainWiped(f"no record of the {len(heads)} witnessed chains is left, and none "
                         f"older than the witness; it holds signed checkpoints up to "
                         f"#{newest.seq} ({_time(newest.ts)})", seq=newest.seq)
    missing = [cp for seq, cp in sorted(by_seq.items()) if seq not in stored]
    if short or missing:
        _classify(store, short, missing, set(heads))
    return WitnessVerdict(len(by_seq), newest, {c: s for c, (s, _m, _k) in heads.items()},
                          notes)


def _authentic(witnessed: Sequence[Witnessed], trusted: TrustedKeys, *,
               unique: bool = True) -> dict[int, Checkpoint]:
    by_seq: dict[int, Checkpoint] = {}
    sources: dict[int, str] = {}
    for item in witnessed:
        cp = item.checkpoint
        try:
            trusted.verify(key_id=cp.key_id, data=cp.payload.encode(), signature=cp.signature)
        except CheckpointInvalid as exc:
            raise WitnessInvalid(f"{item.source}: signature fails (edited)",
                                 seq=cp.seq) from exc
        known = by_seq.setdefault(cp.seq, cp)
        sources.setdefault(cp.seq, item.source)
        if unique and known.signature != cp.signature:
            raise WitnessInvalid(f"{item.source}: two different checkpoints #{cp.seq} (also "
                                 f"{sources[cp.seq]}): another deployment's witness?",
                                 seq=cp.seq)
    return by_seq


def _anchors(stored: dict[str, tuple[int, str]],
             by_seq: dict[int, Checkpoint]) -> dict[str, tuple[int, str]]:
    """Retention cuts signed in the database or in the witness (a purge checkpoint is
    witnessed too, so deleting the database's copy does not turn a purge into damage)."""
    anchors = dict(stored)
    for cp in by_seq.values():
        for chain, (seq, mac) in cp.data.get("anchors", {}).items():
            if chain not in anchors or anchors[chain][0] < int(seq):
                anchors[chain] = (int(seq), str(mac))
    return anchors


def _witnessed_heads(by_seq: dict[int, Checkpoint]) -> dict[str, tuple[int, str, int]]:
    """chain → (seq, mac, checkpoint) of the highest head any witnessed checkpoint signed."""
    heads: dict[str, tuple[int, str, int]] = {}
    for seq, cp in sorted(by_seq.items()):
        for chain, (s, m) in Witnessed(cp, "").heads().items():
            if chain not in heads or heads[chain][0] < s:
                heads[chain] = (s, m, seq)
    return heads


@dataclass(frozen=True)
class _Short:
    chain_id: str
    last: int  # the database's last seq of the chain (0: none left)
    witnessed: int
    checkpoint: int


def _short_chains(store: AuditStore, heads: dict[str, tuple[int, str, int]],
                  anchors: dict[str, tuple[int, str]]) -> list[_Short]:
    """Chains that end below a witnessed head (a purge's signed anchor excuses a head it
    removed); a head at the witnessed seq with another MAC is a replaced record."""
    short = []
    for chain, (seq, mac, cp_seq) in sorted(heads.items()):
        if seq <= anchors.get(chain, (0, ""))[0]:
            continue
        head = store.head_of(chain)
        last = head.seq if head is not None else 0
        if last < seq:
            short.append(_Short(chain, last, seq, cp_seq))
        elif head is not None and last == seq and head.mac != mac:
            raise RecordAltered(f"differs from the head witnessed checkpoint #{cp_seq} signed",
                                chain_id=chain, seq=seq)
    return short


def _classify(store: AuditStore, short: list[_Short], missing: list[Checkpoint],
              chains: set[str]) -> None:
    """Rolled back when the database is a consistent older state: no witnessed chain has
    a record written after the first witnessed checkpoint it lacks (a copy taken before
    that checkpoint; chains the witness never saw, such as those written since the
    restore, do not count). An insider who cut every chain at one moment and deleted the
    newer checkpoints left the same evidence, and is reported the same way; otherwise a
    short chain is ``truncated`` (or ``chain_deleted``) and a gap ``checkpoint_deleted``."""
    first = short[0] if short else None
    where: dict[str, Any] = ({"chain_id": first.chain_id, "seq": first.last + 1}
                             if first else {})
    if missing and not _written_since(store, missing[0].ts, chains):
        where.setdefault("seq", missing[0].seq)
        raise RolledBack(f"the database's witnessed chains end before "
                         f"checkpoint #{missing[0].seq} ({_time(missing[0].ts)}); "
                         f"{len(missing)} witnessed checkpoints and the records after them "
                         "are missing (an older copy, or every chain cut at that time)",
                         **where)
    if first is not None and first.last == 0:
        raise ChainDeleted(f"witnessed checkpoint #{first.checkpoint} saw this chain at "
                           f"{first.witnessed}; no record is left", chain_id=first.chain_id,
                           seq=first.witnessed)
    if first is not None:
        raise ChainTruncated(f"chain ends at {first.last}; witnessed checkpoint "
                             f"#{first.checkpoint} saw {first.witnessed}", **where)
    raise CheckpointDeleted(f"witnessed checkpoint #{missing[0].seq} "
                            f"({_time(missing[0].ts)}) is missing from the database, which "
                            "holds later records", seq=missing[0].seq)


def _written_since(store: AuditStore, ts: int, chains: set[str]) -> bool:
    """Whether a record of ``chains`` at or after ``ts`` (µs) is in the database."""
    since = datetime.fromtimestamp(ts // 1_000_000, UTC)
    return any(row.chain_id in chains and row.ts >= ts
               for row in store.stream_rows(AuditFilter(since=since), batch=500))


def _oldest_ts(store: AuditStore) -> float:
    """The first record's time (infinite when none: a wiped database)."""
    for row in store.stream_rows(AuditFilter(), batch=1):
        return float(row.ts)
    return float("inf")


def _time(ts: int) -> str:
    return datetime.fromtimestamp(ts / 1e6, UTC).isoformat(timespec="seconds")
