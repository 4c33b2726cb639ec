"""Prepared statements of ``SqlRegulationStore``, built once per dialect: building an upsert
or a select costs far more CPU than running it, and these run on every password and
second-factor attempt (a login flood's refusals among them, issue 15 item 7)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, bindparam, func, select

from authgate.storage.tables_regulation import (
    regulation_events as ev,
)
from authgate.storage.tables_regulation import (
    regulation_familiar as fam,
)
from authgate.storage.tables_regulation import (
    regulation_subjects as subj,
)
from authgate.storage.tables_regulation import (
    regulation_users as users,
)


def upsert(conn: Connection) -> Any:
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert
        return pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert
    return sqlite_insert


def _build_lock_user(conn: Connection) -> Any:
    stmt = upsert(conn)(users).values(username=bindparam("username"), chain=0,
                                       chain_unfamiliar=0, pending=0, chain_at=0)
    stmt = stmt.on_conflict_do_update(index_elements=[users.c.username],
                                      set_={"username": stmt.excluded.username})
    return stmt.returning(*users.c)


def _build_lock_subject(conn: Connection) -> Any:
    stmt = upsert(conn)(subj).values(subject=bindparam("subject"), ban_until=None,
                                      ban_level=0, ban_reason="", banned_at=None,
                                      seen_at=bindparam("now"))
    stmt = stmt.on_conflict_do_update(index_elements=[subj.c.subject],
                                      set_={"seen_at": stmt.excluded.seen_at})
    return stmt.returning(*subj.c)


def _build_count(distinct: bool) -> Any:
    what = func.count(func.distinct(ev.c.username)) if distinct else func.count()
    return (select(what).select_from(ev)
            .where(ev.c.subject == bindparam("subject"), ev.c.at > bindparam("since")))


#: Statements built once per dialect: building an upsert costs far more CPU than running
#: it, and these run on every password and second-factor attempt.
_STATEMENTS: dict[tuple[str, str], Any] = {}


def _build_plain_count(conn: Connection) -> Any:
    return _build_count(False)


def _build_distinct_count(conn: Connection) -> Any:
    return _build_count(True)


def _build_familiar_ips(conn: Connection) -> Any:
    return select(fam.c.ip).where(fam.c.username == bindparam("username"),
                                  fam.c.last_success > bindparam("since"))


def _build_subject(conn: Connection) -> Any:
    return select(subj).where(subj.c.subject == bindparam("subject"))


_BUILDERS: dict[str, Callable[[Connection], Any]] = {
    "lock_user": _build_lock_user, "lock_subject": _build_lock_subject,
    "count": _build_plain_count, "count_distinct": _build_distinct_count,
    "familiar_ips": _build_familiar_ips, "subject": _build_subject,
}


def prepared(conn: Connection, kind: str) -> Any:
    key = (conn.dialect.name, kind)
    statement = _STATEMENTS.get(key)
    if statement is None:
        statement = _STATEMENTS[key] = _BUILDERS[kind](conn)
    return statement
