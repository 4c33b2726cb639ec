"""The I/O around the pure preview (issue 19): stream one id range of ``verify`` records
from the audit store into a :class:`~authgate.policy.preview.PreviewBuilder`, and read the
credential store for readiness. Shared by ``authgate policy preview`` (which splits the
records into ranges for ``--jobs``) and the admin console's policy page.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from authgate.policy.preview import AuditedDecision, PreviewBuilder, audited_decision
from authgate.policy.preview_report import PreviewPart, PreviewReport
from authgate.policy.readiness import credential_kind, readiness
from authgate.policy.values import PolicySet
from authgate.storage.audit_rows import ROW_COLUMNS, AuditFilter
from authgate.storage.interfaces import AuditStore, CredentialStore
from authgate.storage.rows import CredentialRow
from authgate.storage.timeconv import from_micros

_TS = ROW_COLUMNS.index("ts")


def replay_span(store: AuditStore, ps: PolicySet, *, since: datetime | None,
                span: tuple[int, int | None] = (1, None), batch: int = 5000, samples: int = 3,
                limit: int | None = None) -> PreviewPart:
    """Replay the ``verify`` records with ids in ``span`` (``first``, ``last``; None: to the
    end) and ``ts >= since``, a keyset batch at a time (flat memory); stop after ``limit``
    records if given."""
    builder = PreviewBuilder(ps, samples=samples)
    seen = 0
    for rows in store.row_batches(AuditFilter(since=since, event="verify"),
                                  after_id=span[0] - 1, batch=batch, last_id=span[1]):
        if limit is not None and seen + len(rows) > limit:
            rows = rows[:limit - seen]
        builder.add_all(map(audited_row, rows))
        seen += len(rows)
        if limit is not None and seen >= limit:
            break
    return builder.part


def audited_row(raw: Sequence[Any]) -> AuditedDecision | str:
    """A stored row (``AuditRow`` layout) as the replay reads it."""
    return audited_decision(dict(zip(ROW_COLUMNS, raw, strict=True)), from_micros(raw[_TS]))


def credential_kinds(store: CredentialStore, users: Iterable[str], *,
                     meets: Callable[[CredentialRow], bool]) -> dict[str, frozenset[str]]:
    """user → the readiness kinds of their active credentials (``policy.readiness``);
    ``meets`` says whether a key satisfies the attestation policy of the pending set."""
    out: dict[str, frozenset[str]] = {}
    for user in users:
        kinds = {credential_kind(kind=row.kind, user_verified=row.user_verified,
                                 meets_attestation=meets(row))
                 for row in store.list_for(user, active_only=True)}
        out[user] = frozenset(k for k in kinds if k is not None)
    return out


def with_readiness(report: PreviewReport, store: CredentialStore, *,
                   meets: Callable[[CredentialRow], bool]) -> PreviewReport:
    """The report with its readiness: the credential store read once per person who used a
    raising rule."""
    users = sorted({user for use in report.raised.values() for user in use.users})
    kinds = credential_kinds(store, users, meets=meets)
    return replace(report, readiness=readiness(report.raised, kinds))
