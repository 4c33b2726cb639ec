"""Is the audit schema the one authgate created? (issue 16)

An insider who can write to the database can also drop an audit table or a column, or
rename one. Every query of the verification would then fail, and a failed query reads as
"could not check" (exit 2): a configuration problem, not evidence. Checked before
verification, such a change is damage (exit 1) like any other edit: ``wiped`` when no
audit table is left, ``schema_altered`` when some are gone or changed.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, inspect
from sqlalchemy.exc import SQLAlchemyError

from authgate.core.errors import StorageError
from authgate.storage.tables import audit_chains, audit_checkpoints, audit_events

_TABLES = (audit_events, audit_chains, audit_checkpoints)


def audit_schema_problem(engine: Engine) -> tuple[str, str] | None:
    """``(kind, detail)`` when the audit tables are not as created; None when they are.
    Raise ``StorageError`` when the database cannot be read at all."""
    try:
        found = inspect(engine)
        names = set(found.get_table_names())
        missing = [t.name for t in _TABLES if t.name not in names]
        if len(missing) == len(_TABLES):
            return "wiped", "the database holds no audit table (dropped, or not the trail)"
        changed = [f"{t.name}.{c.name}" for t in _TABLES if t.name in names
                   for c in t.columns
                   if c.name not in {col["name"] for col in found.get_columns(t.name)}]
        if not missing and not _id_is_the_row_number(found):
            changed.append("audit_events.id (no longer the row number: any value fits)")
    except SQLAlchemyError as exc:
        raise StorageError(f"database error: {type(exc).__name__}") from exc
    if missing or changed:
        gone = ", ".join([*(f"table {m}" for m in missing), *(f"column {c}" for c in changed)])
        return "schema_altered", f"the audit schema was changed: {gone}"
    return None


def _id_is_the_row_number(found: Any) -> bool:
    """``audit_events.id`` is the primary key and, on SQLite, declared ``INTEGER`` (the
    row number): an ``INT`` column, or none, would take text or floats that no id-ordered
    read handles (issue 16, the second outside test)."""
    if found.get_pk_constraint("audit_events").get("constrained_columns") != ["id"]:
        return False
    if found.dialect.name != "sqlite":
        return True
    with found.bind.connect() as conn:  # the declared type itself (SQLAlchemy maps INT too)
        declared = conn.exec_driver_sql("SELECT upper(type) FROM pragma_table_info("
                                        "'audit_events') WHERE name = 'id'").scalar()
    return bool(declared == "INTEGER")
