"""``SqlServiceBindStore``: the service-bind circuit on SQLite or PostgreSQL.

Atomic without table locks: a first claim is an INSERT the primary key lets only one caller
win; taking over an abandoned trial is an UPDATE conditioned on the row as read
(compare-and-set), so two callers can never both hold the trial (issue 15 item 1).
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from authgate.storage.guard import storage_guard
from authgate.storage.service_bind_rows import BindClaim, BindState, ClaimVerdict, ServiceBindRow
from authgate.storage.tables_directory import service_binds as sb
from authgate.storage.timeconv import from_micros, to_micros

_VERDICTS = {BindState.OK: ClaimVerdict.BIND, BindState.REFUSED: ClaimVerdict.REFUSED}


class SqlServiceBindStore:
    """The ``ServiceBindStore`` on SQLite or PostgreSQL."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def claim(self, *, bind_dn: str, fingerprint: str, now: datetime,
              lease: timedelta) -> BindClaim:
        for _ in range(5):  # lost a race: read again
            with storage_guard(), self._engine.begin() as conn:
                claim = self._claim_once(conn, bind_dn, fingerprint, now, lease)
            if claim is not None:
                return claim
        return BindClaim(ClaimVerdict.BUSY)

    def _claim_once(self, conn: Connection, bind_dn: str, fingerprint: str, now: datetime,
                    lease: timedelta) -> BindClaim | None:
        row = self._row(conn, bind_dn, fingerprint)
        trying = {"state": BindState.TRYING.value, "code": "", "detail": "",
                  "changed_at": to_micros(now), "lease_until": to_micros(now + lease)}
        if row is None:
            try:
                with conn.begin_nested():
                    conn.execute(insert(sb).values(bind_dn=bind_dn, fingerprint=fingerprint,
                                                   **trying))
            except IntegrityError:
                return None
            return BindClaim(ClaimVerdict.TRIAL)
        if row.state in _VERDICTS:
            return BindClaim(_VERDICTS[row.state], row)
        if row.lease_until > now:
            return BindClaim(ClaimVerdict.BUSY, row)
        taken = conn.execute(update(sb).where(
            sb.c.bind_dn == bind_dn, sb.c.fingerprint == fingerprint,
            sb.c.state == BindState.TRYING.value,
            sb.c.lease_until == to_micros(row.lease_until)).values(**trying))
        return BindClaim(ClaimVerdict.TRIAL) if taken.rowcount == 1 else None

    def settle(self, *, bind_dn: str, fingerprint: str, state: BindState, code: str,
               detail: str, now: datetime) -> None:
        values: dict[str, Any] = {"state": state.value, "code": code[:16],
                                  "detail": detail[:300], "changed_at": to_micros(now),
                                  "lease_until": to_micros(now)}
        with storage_guard(), self._engine.begin() as conn:
            done = conn.execute(update(sb).where(sb.c.bind_dn == bind_dn,
                                                 sb.c.fingerprint == fingerprint).values(**values))
            if done.rowcount == 0:  # reset while binding: remember the verdict anyway
                conn.execute(insert(sb).values(bind_dn=bind_dn, fingerprint=fingerprint,
                                               **values))

    def release(self, *, bind_dn: str, fingerprint: str) -> None:
        with storage_guard(), self._engine.begin() as conn:
            conn.execute(delete(sb).where(sb.c.bind_dn == bind_dn, sb.c.fingerprint == fingerprint,
                                          sb.c.state == BindState.TRYING.value))

    def refused(self, bind_dn: str) -> list[ServiceBindRow]:
        with storage_guard(), self._engine.connect() as conn:
            rows = conn.execute(select(sb).where(sb.c.bind_dn == bind_dn,
                                                 sb.c.state == BindState.REFUSED.value)
                                .order_by(sb.c.changed_at)).mappings()
            return [_row_of(r) for r in rows]

    def reset(self, bind_dn: str) -> int:
        with storage_guard(), self._engine.begin() as conn:
            return int(conn.execute(delete(sb).where(sb.c.bind_dn == bind_dn)).rowcount or 0)

    @staticmethod
    def _row(conn: Connection, bind_dn: str, fingerprint: str) -> ServiceBindRow | None:
        found = conn.execute(select(sb).where(sb.c.bind_dn == bind_dn,
                                              sb.c.fingerprint == fingerprint)).mappings().first()
        return None if found is None else _row_of(found)


def _row_of(r: Any) -> ServiceBindRow:
    return ServiceBindRow(bind_dn=r["bind_dn"], fingerprint=r["fingerprint"],
                          state=BindState(r["state"]), code=r["code"], detail=r["detail"],
                          changed_at=from_micros(r["changed_at"]),
                          lease_until=from_micros(r["lease_until"]))
