"""Offline verification of an exported file (``authgate audit verify --export FILE``).

The check itself is ``audit.export_offline`` (stand-alone, public key only: what an auditor
runs). Here it gets the keys authgate holds: the *trusted* public keys (the configured ones
and ``--public-key``; a key that only the file itself vouches for is refused), the HMAC
chain keys for manifests and checkpoints signed without an Ed25519 key, and, when the chain
keys are at hand, a per-record check that recomputes each MAC and the link between
consecutive records of a chain. Any difference raises ``ExportDamaged`` naming the line.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from authgate.audit.chain import check_row
from authgate.audit.checkpoints import TrustedKeys
from authgate.audit.errors import ExportInvalid
from authgate.audit.export_offline import (
    CannotCheck,
    ExportReport,
    RecordCheck,
    check_export,
    run,
)
from authgate.audit.export_offline import ExportDamaged as _Damaged
from authgate.audit.render import row_from_export


class ExportDamaged(ExportInvalid):
    """``ExportInvalid`` with the kind of damage (``export_offline.ExportDamaged``)."""

    def __init__(self, kind: str, line: int, detail: str) -> None:
        self.kind, self.detail = kind, detail
        super().__init__(f"{kind}: {detail}", line=line)


@dataclass(frozen=True)
class VerifiedExport:
    count: int
    format: str
    key_id: str
    checkpoint_seq: int | None
    macs_checked: bool
    filter: dict[str, str]


def verify_export(path: str | Path, *, trusted: TrustedKeys,
                  chain_keys: Mapping[str, bytes] | None = None) -> VerifiedExport:
    """Raise ``ExportDamaged`` (an ``ExportInvalid``) naming the line, or return what the
    intact file holds. A check that cannot run raises ``ExportInvalid`` without a line."""
    try:
        report = check_export(path, public_keys=trusted.public, hmac_keys=trusted.macs,
                              record_check=record_checker(chain_keys))
    except _Damaged as exc:
        raise ExportDamaged(exc.kind, exc.line, exc.detail) from exc
    except CannotCheck as exc:
        raise ExportInvalid(f"cannot check: {exc}") from exc
    return VerifiedExport(count=report.records, format=report.format, key_id=report.key_id,
                          checkpoint_seq=report.checkpoint,
                          macs_checked=chain_keys is not None, filter=report.filter)


def check_export_file(path: str | Path, *, trusted: TrustedKeys,
                      chain_keys: Mapping[str, bytes] | None = None
                      ) -> tuple[int, ExportReport]:
    """Exit status (0 intact, 1 damaged, 2 could not check) and the report."""
    return run(str(path), public_keys=trusted.public, hmac_keys=trusted.macs,
               record_check=record_checker(chain_keys))


def record_checker(chain_keys: Mapping[str, bytes] | None) -> RecordCheck | None:
    """With the chain keys: each record's MAC, and a record that follows another of its
    chain by one ``seq`` must name that record's MAC as ``prev``."""
    if chain_keys is None:
        return None
    links: dict[str, tuple[int, str]] = {}

    def check(values: dict[str, Any]) -> tuple[str, str] | None:
        row = row_from_export(values)
        result = check_row(chain_keys, row[1:-1], row[-1])
        if not (result.mac_ok and result.well_formed):
            why = "unknown chain key" if not result.known_key else "MAC does not match"
            return "altered", f"record {row[0]}: {why}"
        chain_id, seq, prev = row[2], row[3], row[5]
        before = links.get(chain_id)
        links[chain_id] = (seq, row[-1])
        if before is not None and before[0] + 1 == seq and before[1] != prev:
            return "reordered", f"record {row[0]} does not follow record seq {before[0]}"
        return None

    return check
