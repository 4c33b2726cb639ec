"""``SqlRegulationStore``: brute-force counters shared by every instance, race-free.

Every password attempt first upserts the account's row in ``regulation_users``
(``INSERT … ON CONFLICT DO UPDATE … RETURNING``): in PostgreSQL that takes the row lock, in
SQLite the database write lock, so the checks that follow and the reservation they lead to
run one attempt at a time per account. Lock order is always account row → bucket row → IP
row, so two attempts never wait on each other in a cycle. An admitted attempt is *reserved*
(its events are written before the bind), so 50 parallel attempts against a limit of 5 let at
most 5 reach the directory (ASVS 2.2.1, NIST SP 800-63B 5.2.2).
"""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    Row,
    and_,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)

from authgate.storage.guard import storage_guard
from authgate.storage.interfaces import RegulationRules
from authgate.storage.regulation_rows import (
    ESCALATION_MEMORY,
    FAMILIAR_TTL,
    PASSWORD_MEMORY,
    Ban,
    BanOrder,
    FactorCounts,
    FailureCounts,
    PriorBan,
    Reservation,
    Settlement,
    Snapshot,
    Verdict,
    factor_subject,
    familiar_subject,
    ip_key,
    password_subject,
    user_subject,
)
from authgate.storage.regulation_statements import prepared, upsert
from authgate.storage.tables_regulation import (
    regulation_events as ev,
)
from authgate.storage.tables_regulation import (
    regulation_familiar as fam,
)
from authgate.storage.tables_regulation import (
    regulation_passwords as pw,
)
from authgate.storage.tables_regulation import (
    regulation_subjects as subj,
)
from authgate.storage.tables_regulation import (
    regulation_users as users,
)
from authgate.storage.timeconv import from_micros, to_micros


def _lock_user(conn: Connection, username: str) -> Row[Any]:
    return conn.execute(prepared(conn, "lock_user"), {"username": username}).one()


def _lock_subject(conn: Connection, subject: str, now: int) -> Row[Any]:
    return conn.execute(prepared(conn, "lock_subject"), {"subject": subject, "now": now}).one()


def _active_ban(row: Row[Any] | None, now: int) -> Ban | None:
    if row is None or row.ban_until is None or row.ban_until <= now:
        return None
    return Ban(row.subject, row.ban_reason, from_micros(row.ban_until), row.ban_level)


def _ban_rows(conn: Connection, username: str, ip: str, mac: str | None, now: datetime, *,
             lock: bool) -> tuple[tuple[set[str], bool, str], list[Row[Any] | None]]:
    """The user's familiar IPs, whether ``ip`` is one, the bucket, and the rows whose bans
    apply, in ``judge``'s order (bucket, IP, password); locked (upserted) or only read."""
    ips = set(conn.execute(prepared(conn, "familiar_ips"), {
        "username": username, "since": to_micros(now - FAMILIAR_TTL)}).scalars())
    bucket = familiar_subject(username, ip) if ip in ips else user_subject(username)
    subjects = [bucket, ip_key(ip)] + ([password_subject(mac)] if mac else [])
    rows = [_lock_subject(conn, s, to_micros(now)) if lock and i < 2 else conn.execute(
        prepared(conn, "subject"), {"subject": s}).one_or_none()
        for i, s in enumerate(subjects)]
    return (ips, ip in ips, bucket), rows


def _bans(rows: Sequence[Row[Any] | None], now: int) -> tuple[Ban, ...]:
    return tuple(b for b in (_active_ban(r, now) for r in rows) if b)


def _count(conn: Connection, subject: str, since: int, *, distinct: bool = False) -> int:
    statement = prepared(conn, "count_distinct" if distinct else "count")
    return int(conn.execute(statement, {"subject": subject, "since": since}).scalar_one())


def _failed_before(conn: Connection, username: str, mac: str | None, since: int) -> bool:
    return conn.execute(select(pw.c.seen_at).where(
        pw.c.username == username, pw.c.mac == mac, pw.c.seen_at > since)).first() is not None


def _clear(conn: Connection, subject: str) -> None:
    conn.execute(delete(ev).where(ev.c.subject == subject))


def _add_events(conn: Connection, attempt: str, subjects: Sequence[str], username: str,
                ip: str, now: int) -> None:
    conn.execute(insert(ev), [{"attempt": attempt, "subject": s, "username": username,
                               "ip": ip, "at": now} for s in subjects])


def _chain(row: Row[Any], rules: RegulationRules, now: int) -> tuple[int, int, int]:
    """(chain, unfamiliar, pending) as AD sees it now: reset once the window has passed."""
    window = rules.chain_window
    if window is None or now - row.chain_at > to_micros_delta(window):
        return 0, 0, 0
    return row.chain, row.chain_unfamiliar, row.pending


def to_micros_delta(delta: Any) -> int:
    return int(delta.total_seconds() * 1_000_000)


def _failure_counts(conn: Connection, r: Reservation, bucket: str, mac: str, since: int, *,
                    repeat: bool) -> FailureCounts:
    """The counters the ban rules look at, read under the attempt's locks."""
    if repeat:  # counted once already: the rules start no ban, nothing to read
        return FailureCounts(r.familiar, bucket, 0, ip_key(r.ip), 0, 0,
                             password_subject(mac), 0, repeat=True)
    sprayed = int(conn.execute(select(func.count(func.distinct(pw.c.username)))
                               .where(pw.c.mac == mac, pw.c.seen_at > since)).scalar_one())
    return FailureCounts(
        familiar=r.familiar, bucket=bucket, bucket_failures=_count(conn, bucket, since),
        ip=ip_key(r.ip), ip_failures=_count(conn, ip_key(r.ip), since),
        ip_users=_count(conn, ip_key(r.ip), since, distinct=True),
        password=password_subject(mac), sprayed_users=sprayed, repeat=False)


class SqlRegulationStore:
    """The ``RegulationStore`` contract on SQLAlchemy Core (SQLite and PostgreSQL).

    It decides nothing: every check and ban comes from the ``rules`` passed in, applied
    while the rows they read are still locked."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    # -- passwords ---------------------------------------------------------------------------
    def admit(self, *, attempt: str, username: str, ip: str, password_mac: str | None,
              rules: RegulationRules, now: datetime) -> Verdict:
        """Check bans, counters and the AD budget, and reserve the attempt, atomically. A ban
        (a flood's steady state) refuses on a read, no write lock (issue 15 item 7: /verify's
        audit appends share SQLite's writer); an admission is re-judged under the locks."""
        t = to_micros(now)
        since = t - to_micros_delta(rules.window)
        chained = rules.chain_window is not None
        with storage_guard(), self._engine.connect() as conn:
            bans = _bans(_ban_rows(conn, username, ip, password_mac, now, lock=False)[1], t)
        if bans:
            reason = rules.judge(Snapshot(
                familiar=False, has_familiar=False, bans=bans, bucket_failures=0,
                ip_failures=0, chain=0, chain_unfamiliar=0, repeat=False))
            if reason:  # "": the bans do not hold this attempt (a vouched password): judge
                return Verdict(reason)  # it in full, under the locks, below
        with storage_guard(), self._engine.begin() as conn:
            user = _lock_user(conn, username)
            (ips, familiar, bucket), rows = _ban_rows(conn, username, ip, password_mac, now,
                                                      lock=True)
            chain, unfamiliar, pending = _chain(user, rules, t)
            snapshot = Snapshot(
                familiar=familiar, has_familiar=bool(ips),
                bans=_bans(rows, t), bucket_failures=_count(conn, bucket, since),
                ip_failures=_count(conn, ip_key(ip), since),
                chain=chain, chain_unfamiliar=unfamiliar,
                repeat=bool(password_mac) and _failed_before(conn, username, password_mac, since))
            reason = rules.judge(snapshot)
            if reason:
                return Verdict(reason)
            _add_events(conn, attempt, (bucket, ip_key(ip)), username, ip, t)
            if chained:
                conn.execute(update(users).where(users.c.username == username).values(
                    chain=chain + 1, chain_unfamiliar=unfamiliar + (0 if familiar else 1),
                    pending=pending + 1, chain_at=t))
        return Verdict("", Reservation(attempt, username, ip, familiar, chained=chained))

    def settle_failure(self, r: Reservation, *, password_mac: str, bind_reached: bool,
                       rules: RegulationRules, now: datetime) -> Settlement:
        """Count a failure once: a repeated password gives its events back (but a bind that
        reached AD keeps its AD slot: AD counted it); then start the bans the rules ask."""
        t = to_micros(now)
        since = t - to_micros_delta(rules.window)
        bucket = familiar_subject(r.username, r.ip) if r.familiar else user_subject(r.username)
        with storage_guard(), self._engine.begin() as conn:
            user = _lock_user(conn, r.username)
            _lock_subject(conn, bucket, t)
            _lock_subject(conn, ip_key(r.ip), t)
            if r.chained:
                self._settle_chain(conn, user, r, refund=not bind_reached)
            repeat = _failed_before(conn, r.username, password_mac, since)
            if repeat:
                conn.execute(delete(ev).where(ev.c.attempt == r.attempt))
            self._remember_password(conn, r.username, password_mac, t)
            counts = _failure_counts(conn, r, bucket, password_mac, since, repeat=repeat)
            bans = tuple(self._ban(conn, order, rules, now)
                         for order in rules.escalations(counts))
        return Settlement(repeat, bans)

    def settle_success(self, r: Reservation, *, now: datetime) -> None:
        """AD resets badPwdCount on a successful logon; so does the mirror, except for binds
        still in flight (counted as failures until they settle). The user's counter for
        this IP is reset, and the IP becomes (or stays) familiar."""
        t = to_micros(now)
        bucket = familiar_subject(r.username, r.ip) if r.familiar else user_subject(r.username)
        with storage_guard(), self._engine.begin() as conn:
            user = _lock_user(conn, r.username)
            if r.chained:
                pending = max(0, user.pending - 1)
                conn.execute(update(users).where(users.c.username == r.username).values(
                    chain=pending, chain_unfamiliar=min(user.chain_unfamiliar, pending),
                    pending=pending))
            conn.execute(delete(ev).where(or_(
                ev.c.attempt == r.attempt, and_(ev.c.subject == bucket, ev.c.ip == r.ip))))
            stmt = upsert(conn)(fam).values(username=r.username, ip=r.ip, last_success=t)
            conn.execute(stmt.on_conflict_do_update(
                index_elements=[fam.c.username, fam.c.ip],
                set_={"last_success": stmt.excluded.last_success}))

    def settle_neutral(self, r: Reservation, *, keep_ad_slot: bool, now: datetime) -> None:
        """Not a guess (the right password in a refused state, a change, no bind sent): the
        policy events are given back, and the AD slot too unless AD may have counted the
        bind (``keep_ad_slot``). Nothing is reset: that is for a real success."""
        del now  # nothing is timed: the attempt is taken back
        with storage_guard(), self._engine.begin() as conn:
            user = _lock_user(conn, r.username)
            if r.chained:
                self._settle_chain(conn, user, r, refund=not keep_ad_slot)
            conn.execute(delete(ev).where(ev.c.attempt == r.attempt))

    def _settle_chain(self, conn: Connection, user: Row[Any], r: Reservation, *,
                      refund: bool) -> None:
        values: dict[str, int] = {"pending": max(0, user.pending - 1)}
        if refund:  # no bind was sent (unknown user): AD counted nothing
            values["chain"] = max(0, user.chain - 1)
            if not r.familiar:
                values["chain_unfamiliar"] = max(0, user.chain_unfamiliar - 1)
        conn.execute(update(users).where(users.c.username == r.username).values(**values))

    def _remember_password(self, conn: Connection, username: str, mac: str, t: int) -> None:
        stmt = upsert(conn)(pw).values(username=username, mac=mac, seen_at=t)
        conn.execute(stmt.on_conflict_do_update(index_elements=[pw.c.username, pw.c.mac],
                                                set_={"seen_at": stmt.excluded.seen_at}))
        keep = (select(pw.c.mac).where(pw.c.username == username)
                .order_by(pw.c.seen_at.desc()).limit(PASSWORD_MEMORY))
        conn.execute(delete(pw).where(pw.c.username == username,
                                      pw.c.mac.not_in(keep.scalar_subquery())))

    def _ban(self, conn: Connection, order: BanOrder, rules: RegulationRules,
             now: datetime) -> Ban:
        """Store the ban the rules make of ``order`` and the subject's previous ban. The
        subject's events are cleared, so after the ban it starts a fresh allowance."""
        t = to_micros(now)
        row = _lock_subject(conn, order.subject, t)
        prior = PriorBan(row.ban_level,
                         None if row.banned_at is None else from_micros(row.banned_at))
        ban = rules.ban(order, prior=prior, now=now)
        conn.execute(update(subj).where(subj.c.subject == order.subject).values(
            ban_until=to_micros(ban.until), ban_level=ban.level, ban_reason=ban.reason,
            banned_at=t))
        conn.execute(delete(ev).where(ev.c.subject == order.subject))
        return ban

    # -- second factors ----------------------------------------------------------------------
    def admit_factor(self, *, attempt: str, username: str, rules: RegulationRules,
                     now: datetime) -> str:
        t = to_micros(now)
        subject = factor_subject(username)
        with storage_guard(), self._engine.begin() as conn:
            row = _lock_subject(conn, subject, t)
            banned = _active_ban(row, t) is not None
            failures = 0 if banned else _count(conn, subject, t - to_micros_delta(rules.window))
            reason = rules.judge_factor(FactorCounts(subject, banned, failures))
            if reason:
                return reason
            _add_events(conn, attempt, (subject,), username, "", t)
        return ""

    def settle_factor(self, *, attempt: str, username: str, success: bool,
                      rules: RegulationRules, now: datetime) -> Ban | None:
        t = to_micros(now)
        subject = factor_subject(username)
        with storage_guard(), self._engine.begin() as conn:
            _lock_subject(conn, subject, t)
            if success:
                _clear(conn, subject)
                return None
            if conn.execute(select(ev.c.at).where(ev.c.attempt == attempt,
                                                  ev.c.subject == subject)).first() is None:
                _add_events(conn, attempt, (subject,), username, "", t)
            failures = _count(conn, subject, t - to_micros_delta(rules.window))
            orders = rules.factor_escalations(FactorCounts(subject, False, failures))
            bans = [self._ban(conn, order, rules, now) for order in orders]
        return bans[0] if bans else None

    def clear_factor_failures(self, *, username: str, now: datetime) -> None:
        subject = factor_subject(username)
        with storage_guard(), self._engine.begin() as conn:
            _lock_subject(conn, subject, to_micros(now))
            _clear(conn, subject)

    def release_factor(self, *, attempt: str, username: str) -> None:
        with storage_guard(), self._engine.begin() as conn:
            conn.execute(delete(ev).where(ev.c.attempt == attempt,
                                          ev.c.subject == factor_subject(username)))

    # -- operators ---------------------------------------------------------------------------
    def active_bans(self, now: datetime) -> list[Ban]:
        t = to_micros(now)
        with storage_guard(), self._engine.connect() as conn:
            rows = conn.execute(select(subj).where(subj.c.ban_until > t)
                                .order_by(subj.c.ban_until.desc())).all()
        return [b for b in (_active_ban(r, t) for r in rows) if b]

    def lift(self, subjects: Sequence[str], *, prefixes: Sequence[str] = ()) -> list[str]:
        """End the bans on these subjects (and any starting with a prefix); reset their
        escalation and counters. Returns the subjects that were banned."""
        match = or_(subj.c.subject.in_(list(subjects)),
                    *(subj.c.subject.startswith(p, autoescape=True) for p in prefixes))
        with storage_guard(), self._engine.begin() as conn:
            lifted = list(conn.execute(select(subj.c.subject).where(
                match, subj.c.ban_until.is_not(None))).scalars())
            names = list(conn.execute(select(subj.c.subject).where(match)).scalars())
            conn.execute(update(subj).where(match).values(ban_until=None, ban_level=0,
                                                          banned_at=None, ban_reason=""))
            if names:
                conn.execute(delete(ev).where(ev.c.subject.in_(names)))
        return lifted

    def purge(self, now: datetime, horizon: datetime) -> int:
        """Forget what no limit looks at any more (unknown names would otherwise pile up)."""
        t, h = to_micros(now), to_micros(horizon)
        memory = to_micros(now - ESCALATION_MEMORY)
        with storage_guard(), self._engine.begin() as conn:
            n = conn.execute(delete(ev).where(ev.c.at < h)).rowcount
            n += conn.execute(delete(pw).where(pw.c.seen_at < h)).rowcount
            n += conn.execute(delete(users).where(users.c.chain_at < h)).rowcount
            n += conn.execute(delete(fam).where(
                fam.c.last_success < to_micros(now - FAMILIAR_TTL))).rowcount
            n += conn.execute(delete(subj).where(
                subj.c.seen_at < h, or_(subj.c.ban_until.is_(None), subj.c.ban_until < t),
                or_(subj.c.banned_at.is_(None), subj.c.banned_at < memory))).rowcount
        return n
