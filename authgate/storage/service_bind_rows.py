"""Values of the service-bind circuit store (``ServiceBindStore``)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class BindState(StrEnum):
    """What is known about one (service account, password fingerprint)."""

    TRYING = "trying"  # one process holds the trial lease and is binding now
    OK = "ok"  # AD accepted this password
    REFUSED = "refused"  # AD refused it: never sent again until reset  # noqa: S105


class ClaimVerdict(StrEnum):
    BIND = "bind"  # known good: bind freely
    TRIAL = "trial"  # this caller holds the single trial: bind once, then settle
    REFUSED = "refused"  # refused before: do not bind
    BUSY = "busy"  # another process is trying this password right now


@dataclass(frozen=True)
class ServiceBindRow:
    bind_dn: str
    fingerprint: str
    state: BindState
    code: str
    detail: str
    changed_at: datetime
    lease_until: datetime


@dataclass(frozen=True)
class BindClaim:
    verdict: ClaimVerdict
    row: ServiceBindRow | None = None
