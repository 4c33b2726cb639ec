"""The I/O around the pure preview (issue 19): stream one id range of ``verify`` records
from the audit store into a :class:`~authgate.policy.preview.PreviewBuilder`, and read the
credential store for readiness. Shared by ``authgate policy preview`` (which splits the
records into ranges for ``--jobs``) and the admin console's policy page.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import datetime

from authgate.policy.preview import PreviewBuilder, RecordReader
from authgate.policy.preview_report import PreviewPart, PreviewReport
from authgate.policy.readiness import credential_kind, readiness
from authgate.policy.values import PolicySet
from authgate.storage.audit_rows import ROW_COLUMNS, AuditFilter
from authgate.storage.interfaces import AuditStore, CredentialStore
from authgate.storage.rows import CredentialRow
from authgate.storage.timeconv import from_micros

(_ID, _TS, _EVENT, _OUTCOME, _USER, _IP, _HOST, _PATH, _METHOD, _RULE, _DETAIL) = (
    ROW_COLUMNS.index(c) for c in ("id", "ts", "event", "outcome", "username", "client_ip",
                                   "host", "path", "method", "rule_id", "detail"))


def replay_span(store: AuditStore, ps: PolicySet, *, since: datetime | None,
                span: tuple[int, int | None] = (1, None), batch: int = 5000, samples: int = 3,
                limit: int | None = None) -> PreviewPart:
    """Replay the ``verify`` records with ids in ``span`` (``first``, ``last``; None: to the
    end) and ``ts >= since``, a keyset batch at a time (flat memory); stop after ``limit``
    records if given."""
    builder = PreviewBuilder(ps, samples=samples)
    read = RecordReader().read_fields
    seen = 0
    for rows in store.row_batches(AuditFilter(since=since, event="verify"),
                                  after_id=span[0] - 1, batch=batch, last_id=span[1]):
        if limit is not None and seen + len(rows) > limit:
            rows = rows[:limit - seen]
        builder.add_all(read(r[_ID], r[_EVENT], r[_OUTCOME], r[_USER], r[_IP], r[_HOST],
                             r[_PATH], r[_METHOD], r[_RULE], r[_DETAIL], from_micros(r[_TS]))
                        for r in rows)
        seen += len(rows)
        if limit is not None and seen >= limit:
            break
    return builder.part


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
