"""A verdict an auditor can sign (issue 16): what ``audit verify`` found, in plain language
and as one JSON object, with its exit status: 0 intact, 1 damaged, 2 could not check.

It says which records were checked (how many, in how many chains, over which period),
the kind and place of any damage, and what the database alone cannot prove yet: the
records after the newest signed checkpoint (deleting them leaves a shorter chain that
looks whole) and a rollback of the whole database to an older copy. The SIEM copy, or a
witness of the checkpoints kept off the host, closes that window (docs/audit.md,
"Reading a verdict"). The CLI only prints what this module builds.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from authgate.audit.errors import ChainDamage
from authgate.audit.verify import VerifiedTrail
from authgate.audit.witness import WitnessVerdict
from authgate.storage.audit_rows import AuditFilter
from authgate.storage.interfaces import AuditStore
from authgate.storage.timeconv import from_micros

EXIT = {"intact": 0, "damaged": 1, "could_not_check": 2}

#: what each kind of damage means, for the person who reads the verdict
MEANING = {
    "altered": "a record was edited after it was written (its MAC does not match)",
    "forged": "a record no authgate writer made was inserted",
    "missing": "records were deleted from the middle of a chain",
    "reordered": "authentic records were moved out of their written order",
    "truncated": "the newest records of a chain were deleted",
    "head_cut": "the oldest records of a chain were deleted outside a signed retention cut",
    "chain_deleted": "every record of a chain was deleted",
    "unsealed": "a record outside any chain (inserted by hand, or older than the chain)",
    "unknown_key": "records sealed with a chain key the configuration does not hold",
    "checkpoint_invalid": "a signed checkpoint was edited, forged or re-keyed",
    "checkpoint_deleted": "a signed checkpoint was deleted",
    "wiped": "the trail is empty: wiped, or a stale copy of the database",
    "schema_altered": "an audit table or column was dropped, renamed or redefined",
    "unreadable": "the trail holds a value no authgate writer stores (edited by hand)",
    "rolled_back": "the database is an older copy: it lacks checkpoints the witness saw",
    "witness_invalid": "a line of the witness or anchor was edited",
}

_RESIDUAL = ("records after the newest signed checkpoint are protected by their chains "
             "only: from the database alone, deleting them, or rolling the whole database "
             "back to an older copy, cannot be told from a trail that simply stopped; "
             "compare with the SIEM copy or a checkpoint witness")


_WITNESSED = ("the witness proves the database still holds every checkpoint it saw; records "
              "written after the newest witnessed checkpoint are protected by their chains "
              "and the SIEM copy only")


@dataclass(frozen=True)
class Verdict:
    verdict: str
    records: int | None = None
    chains: dict[str, int] | None = None
    period: dict[str, str | None] | None = None
    checkpoints: dict[str, Any] | None = None
    damage: dict[str, Any] | None = None
    not_covered: dict[str, Any] | None = None
    witness: dict[str, Any] | None = None
    error: str | None = None

    @property
    def exit_code(self) -> int:
        return EXIT[self.verdict]

    def as_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


def iso(when: datetime | None) -> str | None:
    return when.isoformat().replace("+00:00", "Z") if when else None


def period_of(store: AuditStore, *, since: datetime | None,
              until: datetime | None) -> dict[str, str | None]:
    """The time of the first and the last record checked, and the range asked for."""
    wanted = AuditFilter(since=since, until=until)
    ends = [next(iter(store.stream_rows(wanted, batch=1, descending=d)), None)
            for d in (False, True)]
    first, last = (from_micros(r.ts) if r is not None else None for r in ends)
    return {"first": iso(first), "last": iso(last), "since": iso(since),
            "until": iso(until)}


def intact(trail: VerifiedTrail, *, period: dict[str, str | None],
           witness: WitnessVerdict | None = None, bound: str | None = None) -> Verdict:
    """``witness``: what ``--witness``/``--anchor`` proved (the database holds every
    checkpoint they saw); the records not covered are then those after the witnessed heads.
    ``bound``: how often the gateway signs a checkpoint (the configured window)."""
    cp = trail.latest_checkpoint
    open_chains = sum(1 for c in trail.chains if c.records and not (c.closed or c.goes_on))
    seen = None
    if witness is not None and witness.newest is not None:
        if cp is not None and witness.newest.seq == cp.seq:  # it authenticates them all
            after = trail.unanchored_tail
        else:  # counted from the heads it signed (a chain it never saw: every record)
            after = sum(c.records if c.chain_id not in witness.heads else
                        max(0, c.last_seq - witness.heads[c.chain_id]) for c in trail.chains)
        seen = {"checkpoints": witness.witnessed, "newest": witness.newest.seq,
                "time": iso(from_micros(witness.newest.ts)), "records_after": after,
                "summary": witness.describe()}
    return Verdict(
        verdict="intact", records=trail.records, period=period,
        chains={"total": sum(1 for c in trail.chains if c.records), "open": open_chains},
        checkpoints={"count": trail.checkpoints,
                     "latest": None if cp is None else {
                         "seq": cp.seq, "key_id": cp.key_id, "time": iso(from_micros(cp.ts))}},
        witness=seen,
        not_covered={"records": seen["records_after"] if seen else trail.unanchored_tail,
                     "after_checkpoint": seen["newest"] if seen else cp.seq if cp else None,
                     "open_chains": open_chains, "checkpoint_bound": bound,
                     "why": _WITNESSED if seen else _RESIDUAL})


def damaged(exc: ChainDamage, *, period: dict[str, str | None]) -> Verdict:
    return Verdict(verdict="damaged", period=period, damage={
        "kind": exc.kind, "chain": exc.chain_id or None, "seq": exc.seq,
        "record_id": exc.record_id, "detail": exc.message,
        "meaning": MEANING.get(exc.kind, exc.kind)})


def could_not_check(reason: str) -> Verdict:
    return Verdict(verdict="could_not_check", error=reason)


def plain(verdict: Verdict) -> list[str]:
    """The verdict in sentences, one per line (intact on stdout; the CLI prints damage
    and failures on stderr)."""
    if verdict.verdict == "could_not_check":
        return [f"cannot verify: {verdict.error}",
                "nothing was checked: this says nothing about the trail (exit 2)"]
    if verdict.damage is not None:
        return _plain_damage(verdict.damage, verdict.period or {})
    return _plain_intact(verdict)


def _plain_damage(d: dict[str, Any], period: dict[str, str | None]) -> list[str]:
    where = f"record {d['record_id']}" if d["record_id"] is not None else "chain"
    seq = d["seq"] if d["seq"] is not None else "-"
    lines = [f"DAMAGED {d['kind']}: {where} (chain {d['chain'] or '-'} seq {seq}): "
             f"{d['detail']}",
             f"what it means: {d['meaning']}. This is the first damage found (in id "
             "order); records after it were not judged."]
    if period.get("since") or period.get("until"):
        lines.append(f"range checked: {period.get('since') or 'start'} to "
                     f"{period.get('until') or 'now'}")
    return lines


def _plain_intact(v: Verdict) -> list[str]:
    chains, cps, nc, period = v.chains or {}, v.checkpoints or {}, v.not_covered or {}, \
        v.period or {}
    latest = cps.get("latest")
    lines = [f"intact: {v.records} records in {chains.get('total')} chains, from "
             f"{period.get('first')} to {period.get('last')}; {cps.get('count')} signed "
             "checkpoints" + (f" (latest #{latest['seq']}, key {latest['key_id']}, "
                              f"{latest['time']})" if latest else "")]
    if period.get("since") or period.get("until"):
        lines.append(f"range {period.get('since') or 'start'} to {period.get('until') or 'now'}"
                     ": each chain's records link to its records just outside the range")
    bound = f"; {nc['checkpoint_bound']}" if nc.get("checkpoint_bound") else ""
    if v.witness:
        lines.append(v.witness["summary"])
        lines.append(f"residual window (not covered yet): {nc.get('records')} records "
                     "written after it are protected by their chains and the SIEM copy "
                     f"only{bound}")
    else:
        lines.append(f"not covered yet: {nc.get('records')} records written after the "
                     f"newest checkpoint; {nc.get('why')}")
        if bound:
            lines.append(f"residual window{bound[1:]}".replace("window ", "window: ", 1))
    if nc.get("open_chains"):
        lines.append(f"note: {nc['open_chains']} chains are open (live writers, or crashed)")
    return lines
