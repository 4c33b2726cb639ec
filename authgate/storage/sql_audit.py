"""``SqlAuditStore``: the audit trail in SQLite or PostgreSQL.

The hot append (one per ``/verify`` decision) and the bulk reads (verification, exports)
go through the DBAPI cursor with pre-built SQL: SQLAlchemy Core's per-statement overhead is
several times the cost of a WAL insert (measured: benchmarks/verify.py). Everything else uses
Core. The row layout (``storage.audit_rows``) is the hash chain's canonical field order;
the store itself knows nothing about keys or MACs. It implements ``interfaces.AuditStore``.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from itertools import chain
from typing import Any

from sqlalchemy import Engine, func, insert, select
from sqlalchemy.exc import IntegrityError

from authgate.core.errors import StorageError
from authgate.core.values import AuditEvent, StoredAuditEvent
from authgate.storage import sql_audit_lines, sql_audit_summary
from authgate.storage.audit_rows import (
    MAX_ID,
    ROW_COLUMNS,
    SEALED_FIELDS,
    AuditFilter,
    AuditRow,
    ChainHead,
    CheckpointRow,
    DayCounts,
    ExportFormat,
    FailingSource,
    PurgePoint,
    RawAuditRow,
    RenderedRow,
    ReportOnlyCount,
    SealedRow,
    detail_json,
    stored_event,
)
from authgate.storage.fastpath import connections_for
from authgate.storage.guard import storage_guard
from authgate.storage.sql_audit_sealed import (
    SAFE_CHAIN_COLUMNS,
    as_bytes,
    canonical_sql,
    decoded,
    sealed_rows,
)
from authgate.storage.tables import audit_checkpoints, audit_events
from authgate.storage.timeconv import to_micros

_BATCH = 1000
# S608 below: every SQL string is built from constants and the driver's placeholder; all
# values are bound parameters.
_SELECT_ROW = f"SELECT {', '.join(ROW_COLUMNS)} FROM audit_events"  # noqa: S608


def filter_clauses(wanted: AuditFilter, mark: str) -> tuple[list[str], list[Any]]:
    """``wanted`` as SQL conditions with ``mark`` placeholders, and their bound values."""
    where: list[str] = []
    params: list[Any] = []
    for op, when in ((">=", wanted.since), ("<", wanted.until)):
        if when is not None:
            where.append(f"ts {op} {mark}")
            params.append(to_micros(when))
    for column, text in wanted.text_criteria():
        if text:
            where.append(f"{column} = {mark}")
            params.append(text)
    return where, params


#: the columns verification reads beside the sealed text (``stream_sealed``)
_CHAIN_COLUMNS = "id, seq, mac, chain_id, key_id, prev"


class SqlAuditStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._insert = insert(audit_events)
        self.mark = "?" if engine.dialect.paramstyle == "qmark" else "%s"
        self.is_sqlite = engine.dialect.name == "sqlite"

    @property
    def engine(self) -> Engine:
        return self._engine

    def append(self, event: AuditEvent) -> int:
        """An unsealed record (no chain). ``AuditLog`` appends sealed rows through
        ``appender()``; verification reports unsealed records as damage."""
        if event.time is None:
            raise ValueError("an audit event needs its time before it is stored")
        with storage_guard(), self._engine.begin() as conn:
            result = conn.execute(self._insert, _row(event))
        return int(result.inserted_primary_key[0])  # type: ignore[index]

    def appender(self) -> SqlAppender:
        return SqlAppender(self)

    def query(self, *, since: datetime | None = None, until: datetime | None = None,
              username: str | None = None, event: str | None = None,
              outcome: str | None = None, host: str | None = None, after_id: int = 0,
              limit: int | None = None) -> Iterator[StoredAuditEvent]:
        """Stream matching records in id order, a batch per query (constant memory)."""
        wanted = AuditFilter(since=since, until=until, username=username or "",
                             event=event or "", outcome=outcome or "", host=host or "")
        count = 0
        for row in self.stream_rows(wanted, after_id=after_id, batch=_BATCH):
            if limit is not None and count >= limit:
                return
            count += 1
            yield stored_event(row)

    # -- bulk reads (keyset batches over the DBAPI cursor: constant memory) -------------
    @contextmanager
    def cursor(self) -> Iterator[Any]:
        try:
            raw = self._engine.raw_connection()
        except Exception as exc:  # noqa: BLE001 - any driver error: storage unavailable
            raise StorageError(f"database error: {type(exc).__name__}") from exc
        try:
            cur = raw.cursor()
            yield cur
            cur.close()
            raw.commit()
        except StorageError:
            raise
        except Exception as exc:  # noqa: BLE001
            raw.invalidate()
            raise StorageError(f"database error: {type(exc).__name__}") from exc
        finally:
            raw.close()

    def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self.cursor() as cur:
            cur.execute(sql, tuple(params))
            return cur.fetchall()  # type: ignore[no-any-return]

    def batches(self, sql: str, params: Sequence[Any], *, after: int, batch: int,
                fallback: str | None = None) -> Iterator[list[tuple[Any, ...]]]:
        """``sql``'s rows a batch at a time, by id (keyset, never OFFSET: constant memory).
        ``sql`` takes the last id seen as its first parameter, then ``params``, and ends
        ``ORDER BY id ... LIMIT batch``; each row starts with its id. A batch ``sql`` fails
        on is read with ``fallback`` (the same rows, slower SQL) when given."""
        last = after
        while True:
            try:
                rows = self.fetch(sql, [last, *params])
            except StorageError:
                if fallback is None:
                    raise
                rows = self.fetch(fallback, [last, *params])
            if rows:
                yield rows
            if len(rows) < batch:
                return
            last = rows[-1][0]

    def row_batches(self, wanted: AuditFilter, *, after_id: int = 0, batch: int = 5000,
                    descending: bool = False, last_id: int | None = None,
                    ) -> Iterator[list[RawAuditRow]]:
        """Rows ``ROW_COLUMNS`` matching ``wanted``, a batch at a time by id (keyset, never
        OFFSET), ascending up to ``last_id`` if given."""
        where, params = filter_clauses(wanted, self.mark)
        if last_id is not None:
            where, params = [*where, f"id <= {self.mark}"], [*params, last_id]
        op, order = ("<", "DESC") if descending else (">", "ASC")
        sql = " AND ".join([f"id {op} {self.mark}", *where])
        sql = f"{_SELECT_ROW} WHERE {sql} ORDER BY id {order} LIMIT {int(batch)}"
        last = after_id if after_id or not descending else MAX_ID
        return self.batches(sql, params, after=last, batch=batch)

    def stream_rows(self, wanted: AuditFilter, *, after_id: int = 0, batch: int = 5000,
                    descending: bool = False) -> Iterator[AuditRow]:
        """``row_batches``, a row at a time."""
        for rows in self.row_batches(wanted, after_id=after_id, batch=batch,
                                     descending=descending):
            yield from map(AuditRow._make, rows)

    def rendered_batches(self, wanted: AuditFilter, *, fmt: ExportFormat, batch: int,
                         first_id: int, last_id: int | None,
                         ) -> Iterator[list[RenderedRow]] | None:
        """SQLite renders export lines itself (``sql_audit_lines``); PostgreSQL: None."""
        if not self.is_sqlite:
            return None
        where, params = filter_clauses(wanted, self.mark)
        return sql_audit_lines.stream_bodies(self, where, params, fmt=fmt, batch=batch,
                                             first_id=first_id, last_id=last_id)

    def stream_sealed(self, *, first_id: int = 1, last_id: int | None = None,
                      batch: int = 5000, text_event: str = "") -> Iterator[SealedRow]:
        """``(id, seq, mac, chain_id, key_id, prev, sealed)`` for every row with
        ``first_id <= id <= last_id``, in id order: what verification needs, with the sealed
        text rendered by the database (``canonical_sql``: one value instead of nineteen to
        decode per row), as bytes for version 2 (as text where ``event`` is ``text_event``)
        and text for version 1."""
        m, sqlite = self.mark, self.is_sqlite
        rest = f"FROM audit_events WHERE id > {m} AND id <= {m} ORDER BY id LIMIT {int(batch)}"
        sealed = canonical_sql(sqlite=sqlite, text_event=text_event)
        sql = f"SELECT {_CHAIN_COLUMNS}, {sealed} {rest}"  # noqa: S608
        safe = None  # SQLite only: a BLOB makes ``json_array`` fail (PostgreSQL text is text)
        if sqlite:
            sealed = canonical_sql(sqlite=True, blob_safe=True, text_event=text_event)
            safe = f"SELECT {SAFE_CHAIN_COLUMNS}, {sealed} {rest}"  # noqa: S608
        end = MAX_ID if last_id is None else last_id
        batches = self.batches(sql, [end], after=first_id - 1, batch=batch, fallback=safe)
        # rows straight from each batch's list: a generator step per row cost 1% of a check
        return chain.from_iterable(sealed_rows(rows, sqlite=sqlite) for rows in batches)

    def id_span(self, since: int | None, until: int | None) -> tuple[int, int | None]:
        """The id range of the records with ``since <= ts < until`` (ts index)."""
        m = self.mark
        lo, hi = 1, None
        if since is not None:
            found = self.fetch(f"SELECT MIN(id) FROM audit_events WHERE ts >= {m}", [since])  # noqa: S608
            lo = found[0][0] if found[0][0] is not None else MAX_ID
        if until is not None:
            found = self.fetch(f"SELECT MAX(id) FROM audit_events WHERE ts < {m}", [until])  # noqa: S608
            hi = found[0][0] if found[0][0] is not None else 0
        return lo, hi

    def max_id(self) -> int:
        return int(self.fetch("SELECT MAX(id) FROM audit_events")[0][0] or 0)

    def stored_later(self, chain_id: str, seq: int, after_id: int) -> int | None:
        """The lowest id above ``after_id`` holding a record of ``chain_id`` before
        ``seq``: a record taken for deleted that was moved to a later id."""
        m = self.mark
        found = self.fetch(f"SELECT MIN(id) FROM audit_events WHERE chain_id = {m} AND "  # noqa: S608
                           f"seq < {m} AND id > {m}", [chain_id, seq, after_id])[0][0]
        return None if found is None else int(found)

    def first_below(self, first_id: int) -> int | None:
        """The lowest id below ``first_id``: authgate writes ids from 1 up, so a row
        below was put there by hand (and a scan from 1 would never read it)."""
        found = self.fetch(f"SELECT MIN(id) FROM audit_events WHERE id < {self.mark}",  # noqa: S608
                           [first_id])[0][0]
        return None if found is None else int(found)

    def chain_edges(self, *, below: int, above: int | None) -> list[int]:
        """The id of each chain's last record below ``below`` and first above ``above``
        (None: none): the records just outside a verified range, which must link across
        it. One grouped pass over the primary key on each side."""
        m = self.mark
        ids = [r[0] for r in self.fetch("SELECT MAX(id) FROM audit_events WHERE id < "  # noqa: S608
                                        f"{m} GROUP BY chain_id", [below])]
        if above is not None:
            ids += [r[0] for r in self.fetch("SELECT MIN(id) FROM audit_events WHERE "  # noqa: S608
                                             f"id > {m} GROUP BY chain_id", [above])]
        return sorted(ids)

    def registered_chains(self) -> set[str]:
        """Every registered chain id (SQLite: text that is not UTF-8 is left out as bytes
        rather than failing the read)."""
        column = as_bytes("chain_id") if self.is_sqlite else "chain_id"
        return {decoded(r[0]) for r in self.fetch(f"SELECT {column} FROM audit_chains")}  # noqa: S608

    def head_of(self, chain_id: str) -> ChainHead | None:
        """A chain's last record; its writer wrote recently, so the backward scan is short."""
        m = self.mark
        rows = self.fetch(f"SELECT seq, mac FROM audit_events WHERE chain_id = {m} "  # noqa: S608
                          "ORDER BY id DESC LIMIT 1", [chain_id])
        return ChainHead(int(rows[0][0]), rows[0][1]) if rows else None

    def heads_since(self, after_id: int) -> tuple[int, dict[str, ChainHead]]:
        """The highest id, and the head of every chain that grew, after ``after_id``."""
        m = self.mark
        rows = self.fetch(f"SELECT id, chain_id, seq, mac FROM audit_events WHERE id IN "  # noqa: S608
                          f"(SELECT MAX(id) FROM audit_events WHERE id > {m} AND "
                          "chain_id <> '' GROUP BY chain_id)", [after_id])
        heads = {chain_id: ChainHead(int(seq), mac) for _id, chain_id, seq, mac in rows}
        return max([after_id, *(int(row_id) for row_id, *_ in rows)]), heads

    def purge_points(self, before_ts: int) -> list[PurgePoint]:
        """Per chain, its last record older than ``before_ts``."""
        m = self.mark
        rows = self.fetch(f"SELECT chain_id, id, seq, mac FROM audit_events WHERE id IN "  # noqa: S608
                          f"(SELECT MAX(id) FROM audit_events WHERE ts < {m} AND "
                          "chain_id <> '' GROUP BY chain_id)", [before_ts])
        return [PurgePoint._make(row) for row in rows]

    def delete_chain_prefix(self, chain_id: str, upto_id: int) -> int:
        m = self.mark
        with self.cursor() as cur:
            cur.execute(f"DELETE FROM audit_events WHERE chain_id = {m} AND id <= {m}",  # noqa: S608
                        (chain_id, upto_id))
            return int(cur.rowcount)

    # -- checkpoints ------------------------------------------------------------------
    def checkpoints(self) -> list[CheckpointRow]:
        """Every checkpoint in seq order (few rows), as stored: SQLite text that is not
        UTF-8 is handed over as bytes (verification refuses it) instead of failing."""
        names = ("seq", "ts", "kind", "key_id", "payload", "signature")
        cols = ", ".join(map(as_bytes, names)) if self.is_sqlite else ", ".join(names)
        rows = self.fetch(f"SELECT {cols} FROM audit_checkpoints ORDER BY seq")  # noqa: S608
        return [CheckpointRow._make(map(decoded, r)) for r in rows]

    def last_checkpoint(self) -> CheckpointRow | None:
        """The newest checkpoint."""
        c = audit_checkpoints.c
        with storage_guard(), self._engine.connect() as conn:
            row = conn.execute(select(c.seq, c.ts, c.kind, c.key_id, c.payload, c.signature)
                               .order_by(c.seq.desc()).limit(1)).first()
        return CheckpointRow._make(row) if row else None

    def insert_checkpoint(self, *, seq: int, ts: int, kind: str, key_id: str, payload: str,
                          signature: str) -> bool:
        """False when another writer took ``seq`` first (the caller rebuilds and retries)."""
        try:
            with self._engine.begin() as conn:
                conn.execute(insert(audit_checkpoints).values(
                    seq=seq, ts=ts, kind=kind, key_id=key_id, payload=payload,
                    signature=signature))
        except IntegrityError:
            return False
        except Exception as exc:  # noqa: BLE001
            raise StorageError(f"database error: {type(exc).__name__}") from exc
        return True

    def count(self) -> int:
        with storage_guard(), self._engine.connect() as conn:
            total = conn.execute(select(func.count()).select_from(audit_events)).scalar_one()
        return int(total)

    def daily_counts(self, *, since: datetime, until: datetime) -> list[DayCounts]:
        return sql_audit_summary.daily_counts(self, since=since, until=until)

    def top_failing_sources(self, *, since: datetime, until: datetime,
                            limit: int = 10) -> list[FailingSource]:
        return sql_audit_summary.top_failing_sources(self, since=since, until=until,
                                                     limit=limit)

    def report_only_counts(self, *, since: datetime, until: datetime
                           ) -> tuple[list[ReportOnlyCount], bool]:
        return sql_audit_summary.report_only_counts(self, since=since, until=until)


class SqlAppender:
    """A writer lane's hot, sealed append, on the calling thread's hot-path connection
    (``storage.fastpath``: shared with the session lookup, busy retried).

    The lane's lock serialises a lane's appends. After a failure the caller re-reads its
    chain head (the commit may have happened).
    """

    def __init__(self, store: SqlAuditStore) -> None:
        self._store = store
        self._fast = connections_for(store.engine)
        m = store.mark
        cols = (*SEALED_FIELDS, "mac")
        self._sql = (f"INSERT INTO audit_events ({', '.join(cols)}) VALUES "  # noqa: S608
                     f"({', '.join([m] * len(cols))})")
        if not store.is_sqlite:
            self._sql += " RETURNING id"
        self._register = (f"INSERT INTO audit_chains (chain_id, created_ts, writer, key_id) "  # noqa: S608
                          f"VALUES ({m}, {m}, {m}, {m})")

    def insert(self, row: tuple[Any, ...], *, register: tuple[Any, ...] | None = None) -> int:
        """Store one sealed row (registering its chain with the first); its new id."""
        def write(conn: Any) -> int:
            cur = conn.cursor()
            new_id = self.insert_on(cur, row, register=register)
            cur.close()
            conn.commit()
            return new_id

        return self._fast.run(write, one_statement=register is None)

    def insert_on(self, cur: Any, row: tuple[Any, ...], *,
                  register: tuple[Any, ...] | None) -> int:
        """The insert on a cursor of the caller's open transaction; the caller commits."""
        if register is not None:
            cur.execute(self._register, register)
        cur.execute(self._sql, row)
        return int(cur.lastrowid if self._store.is_sqlite else cur.fetchone()[0])

    def discard(self) -> None:
        self._fast.discard()

    def close(self) -> None:
        """Nothing of its own to close: the connection belongs to the thread."""


def _row(e: AuditEvent) -> dict[str, Any]:
    return {
        "ts": to_micros(e.time),  # type: ignore[arg-type]
        "event": e.event, "outcome": e.outcome.value, "reason": e.reason,
        "username": e.username, "client_ip": e.client_ip, "user_agent": e.user_agent,
        "host": e.host, "path": e.path, "method": e.method, "rule_id": e.rule_id,
        "policy_digest": e.policy_digest, "request_id": e.request_id,
        "detail": detail_json(e.detail),
    }
