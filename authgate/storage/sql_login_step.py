"""``SqlLoginSteps``: a second-factor step's writes as one transaction (issue 20 item 1).

The step used to be a chain of SQLAlchemy Core calls, each its own transaction (the
throttle's reservation, the accepted TOTP step, the throttle's reset, the session replaced,
the audit record: five commits), so a failure between them could leave, say, an accepted
code with no audit record, or a code spent while the old session id went on working. Here
they run on the thread's hot-path connection (``storage.fastpath``) between one BEGIN
(IMMEDIATE on SQLite) and one COMMIT, with prepared SQL, as ``/verify`` does.

Concurrency: on SQLite the transaction holds the database's write lock from its BEGIN; on
PostgreSQL the throttle's first statement locks the user's ``factor:`` subject row until
COMMIT. Either way two steps of one user run one after the other, and the conditional
UPDATE of ``last_step`` still refuses a step already spent (RFC 6238 5.2).
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Engine

from authgate.core.values import SessionRecord
from authgate.storage.fastpath import connections_for
from authgate.storage.interfaces import RegulationRules
from authgate.storage.regulation_rows import FactorCounts, factor_subject
from authgate.storage.rows import ChallengeRow, CredentialRow, RecoveryCodeRow
from authgate.storage.sql_audit import SqlAppender, SqlAuditStore
from authgate.storage.sql_credentials import credential_row
from authgate.storage.sql_sessions import session_values
from authgate.storage.step_interfaces import SealedRecord
from authgate.storage.tables import sessions
from authgate.storage.tables_factors import credentials
from authgate.storage.timeconv import to_micros

T = TypeVar("T")
_CREDENTIAL_COLUMNS = [c.name for c in credentials.columns]
_SESSION_COLUMNS = [c.name for c in sessions.columns]
# S608: every statement is built from constants; all values are bound parameters.
_SQL = {
    "lock_subject": "INSERT INTO regulation_subjects (subject, ban_until, ban_level, "
                    "ban_reason, banned_at, seen_at) VALUES (?, NULL, 0, '', NULL, ?) "
                    "ON CONFLICT (subject) DO UPDATE SET seen_at = excluded.seen_at "
                    "RETURNING ban_until",
    "count": "SELECT count(*) FROM regulation_events WHERE subject = ? AND at > ?",
    "add_event": "INSERT INTO regulation_events (attempt, subject, username, ip, at) "
                 "VALUES (?, ?, ?, '', ?)",
    "clear": "DELETE FROM regulation_events WHERE subject = ?",
    "release": "DELETE FROM regulation_events WHERE attempt = ? AND subject = ?",
    "totp": f"SELECT {', '.join(_CREDENTIAL_COLUMNS)} FROM credentials WHERE "  # noqa: S608
            "username = ? AND kind = 'totp' AND active = ? ORDER BY created_at",
    "accept": "UPDATE credentials SET last_step = ?, last_used_at = ? WHERE id = ? AND "
              "(last_step IS NULL OR last_step < ?)",
    "codes": "SELECT id, code_hash FROM recovery_codes WHERE username = ? AND "
             "used_at IS NULL",
    "spend": "UPDATE recovery_codes SET used_at = ? WHERE id = ? AND used_at IS NULL",
    "take": "DELETE FROM challenges WHERE id_hash = ? RETURNING purpose, username, "
            "challenge, expires_at",
    "key": f"SELECT {', '.join(_CREDENTIAL_COLUMNS)} FROM credentials WHERE "  # noqa: S608
           "credential_id = ? AND active = ?",
    # WebAuthn §6.1.1, judged against the count stored at commit time, in one statement:
    # above it, or both 0 (an authenticator without a counter)
    "sign_count": "UPDATE credentials SET sign_count = ?, last_used_at = ? WHERE id = ? AND "
                  "(sign_count < ? OR (sign_count = 0 AND ? = 0))",
    "drop_session": "DELETE FROM sessions WHERE id_hash = ?",
    "add_session": f"INSERT INTO sessions ({', '.join(_SESSION_COLUMNS)}) VALUES "  # noqa: S608
                   f"({', '.join('?' * len(_SESSION_COLUMNS))})",
}


class SqlLoginSteps:
    """The ``LoginStepUnit`` on SQLite or PostgreSQL."""

    def __init__(self, engine: Engine) -> None:
        self._fast = connections_for(engine)
        self._sql = {name: self._fast.sql(text) for name, text in _SQL.items()}
        self._appender = SqlAppender(SqlAuditStore(engine))

    def run(self, work: Callable[[SqlStepWrites], T]) -> T:
        def transaction(conn: Any) -> T:
            writes = SqlStepWrites(conn.cursor(), self._sql, self._appender)
            try:
                result = work(writes)
            finally:
                writes.cur.close()
            if writes.discarded:
                conn.rollback()
            else:
                conn.commit()
            return result

        return self._fast.run(transaction)


class SqlStepWrites:
    """``StepWrites`` on one cursor of the open transaction."""

    def __init__(self, cur: Any, sql: dict[str, str], appender: SqlAppender) -> None:
        self.cur = cur
        self._sql = sql
        self._appender = appender
        self.discarded = False

    def _one(self, name: str, params: tuple[Any, ...]) -> Any:
        self.cur.execute(self._sql[name], params)
        return self.cur.fetchone()

    # -- the second-factor throttle (as ``SqlRegulationStore``, on this transaction) --------
    def admit_factor(self, *, attempt: str, username: str, rules: RegulationRules,
                     now: datetime) -> str:
        t = to_micros(now)
        subject = factor_subject(username)
        ban_until = self._one("lock_subject", (subject, t))[0]
        banned = ban_until is not None and ban_until > t
        window = int(rules.window.total_seconds() * 1_000_000)
        failures = 0 if banned else int(self._one("count", (subject, t - window))[0])
        reason = rules.judge_factor(FactorCounts(subject, banned, failures))
        if not reason:
            self.cur.execute(self._sql["add_event"], (attempt, subject, username, t))
        return reason

    def clear_factor_failures(self, *, username: str, now: datetime) -> None:
        subject = factor_subject(username)
        self._one("lock_subject", (subject, to_micros(now)))
        self.cur.execute(self._sql["clear"], (subject,))

    def release_factor(self, *, attempt: str, username: str) -> None:
        self.cur.execute(self._sql["release"], (attempt, factor_subject(username)))

    # -- the factor, the session, the audit record -----------------------------------------
    def totp_credentials(self, username: str) -> list[CredentialRow]:
        self.cur.execute(self._sql["totp"], (username, True))
        return [_credential(r) for r in self.cur.fetchall()]

    def accept_step(self, cred_id: str, step: int, now: datetime) -> bool:
        return self._changed_one("accept", (step, to_micros(now), cred_id, step))

    def recovery_codes(self, username: str) -> list[RecoveryCodeRow]:
        self.cur.execute(self._sql["codes"], (username,))
        return [RecoveryCodeRow(str(r[0]), str(r[1])) for r in self.cur.fetchall()]

    def spend_recovery_code(self, code_id: str, now: datetime) -> bool:
        return self._changed_one("spend", (to_micros(now), code_id))

    def take_challenge(self, key: str, *, purpose: str, now: datetime) -> ChallengeRow | None:
        found = self._one("take", (key,))
        if found is None or found[0] != purpose or found[3] <= to_micros(now):
            return None
        return ChallengeRow(str(found[1]), str(found[2]))

    def webauthn_credential(self, credential_id: str) -> CredentialRow | None:
        found = self._one("key", (credential_id, True))
        return None if found is None else _credential(found)

    def accept_sign_count(self, cred_id: str, *, new: int, now: datetime) -> bool:
        return self._changed_one("sign_count", (new, to_micros(now), cred_id, new, new))

    def _changed_one(self, name: str, params: tuple[Any, ...]) -> bool:
        self.cur.execute(self._sql[name], params)
        return int(self.cur.rowcount) == 1

    def replace_session(self, old_id_hash: str, record: SessionRecord) -> bool:
        if not self.end_session(old_id_hash):
            return False
        self.add_session(record)
        return True

    def end_session(self, id_hash: str) -> bool:
        return self._changed_one("drop_session", (id_hash,))

    def add_session(self, record: SessionRecord) -> None:
        values = session_values(record)
        self.cur.execute(self._sql["add_session"], tuple(values[c] for c in _SESSION_COLUMNS))

    def append_audit(self, record: SealedRecord) -> int:
        return self._appender.insert_on(self.cur, record.row, register=record.register)

    def discard(self) -> None:
        self.discarded = True


def _credential(values: tuple[Any, ...]) -> CredentialRow:
    return credential_row(dict(zip(_CREDENTIAL_COLUMNS, values, strict=True)))
