"""``SqlRegulationStore`` against both engines: atomic reservations (50 threads), sliding
window, escalation, smart lockout, repeats counted once, spray, lift, purge."""
from __future__ import annotations

import secrets
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, func, select

from authgate.storage.regulation_rows import Reservation
from authgate.storage.sql_regulation import SqlRegulationStore
from authgate.storage.tables_regulation import regulation_users
from tests.regulation.conftest import ad, rules

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def admit(store: SqlRegulationStore, user: str = "alice", ip: str = "203.0.113.1",
          now: datetime = T0, mac: str | None = None, **lim: object):  # type: ignore[no-untyped-def]
    return store.admit(attempt=secrets.token_hex(16), username=user, ip=ip,
                       password_mac=mac, rules=rules(**lim), now=now)


def fail(store: SqlRegulationStore, r: Reservation, mac: str = "m1", now: datetime = T0,
         bind: bool = True, **lim: object):  # type: ignore[no-untyped-def]
    return store.settle_failure(r, password_mac=mac, bind_reached=bind, rules=rules(**lim),
                                now=now)


def race(n: int, work) -> list:  # type: ignore[no-untyped-def]
    barrier = threading.Barrier(n)

    def one(i: int):  # type: ignore[no-untyped-def]
        barrier.wait()
        return work(i)
    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(one, range(n)))


def test_50_parallel_attempts_admit_exactly_the_limit(store: SqlRegulationStore) -> None:
    verdicts = race(50, lambda i: admit(store, ip=f"198.51.100.{i}", per_user=5))
    assert sum(v.allowed for v in verdicts) == 5
    assert {v.reason for v in verdicts if not v.allowed} == {"user_throttled"}


def test_50_parallel_attempts_never_exceed_the_ad_budget(store: SqlRegulationStore,
                                                         engine: Engine) -> None:
    verdicts = race(50, lambda i: admit(store, ip=f"198.51.100.{i}", per_user=50,
                                        per_ip=100, ad=ad(3)))
    assert sum(v.allowed for v in verdicts) == 2  # T - 1: AD's badPwdCount stays at 2 < 3
    with engine.connect() as conn:
        row = conn.execute(select(regulation_users)).one()
    assert (row.chain, row.pending) == (2, 2)


def test_50_parallel_from_one_ip_across_users(store: SqlRegulationStore) -> None:
    verdicts = race(50, lambda i: admit(store, user=f"user{i}", per_ip=7))
    assert sum(v.allowed for v in verdicts) == 7


def test_sliding_window_and_escalating_bans(store: SqlRegulationStore) -> None:
    now = T0
    for n in range(3):
        r = admit(store, now=now, per_user=3).reservation
        settlement = fail(store, r, mac=f"p{n}", now=now, per_user=3)
        now += timedelta(minutes=1)
    assert [b.reason for b in settlement.bans] == ["user_banned"]
    assert settlement.bans[0].until == T0 + timedelta(minutes=2 + 15)
    assert admit(store, now=now, per_user=3).reason == "user_banned"
    now = settlement.bans[0].until + timedelta(seconds=1)  # ban over: a fresh allowance
    for n in range(3):
        r = admit(store, now=now, per_user=3).reservation
        settlement = fail(store, r, mac=f"q{n}", now=now, per_user=3)
    assert settlement.bans[0].level == 1  # escalated: 30 minutes
    assert settlement.bans[0].until == now + timedelta(minutes=30)


def test_window_slides(store: SqlRegulationStore) -> None:
    for n in range(2):
        fail(store, admit(store, per_user=3).reservation, mac=f"p{n}", per_user=3)
    later = T0 + timedelta(minutes=16)
    assert admit(store, now=later, per_user=3).allowed  # the two failures left the window


def test_repeated_password_counts_once(store: SqlRegulationStore) -> None:
    for _ in range(10):
        r = admit(store, per_user=3).reservation
        assert r is not None
        settlement = fail(store, r, mac="same", per_user=3)
    assert not settlement.bans and settlement.repeat
    fail(store, admit(store, per_user=3).reservation, mac="other", per_user=3)
    assert admit(store, per_user=3).allowed  # 2 distinct failures < 3


def test_repeat_reaching_ad_still_costs_its_ad_slot(store: SqlRegulationStore) -> None:
    r = admit(store, ad=ad(4)).reservation
    fail(store, r, mac="same", ad=ad(4))
    r = admit(store, ad=ad(4)).reservation
    assert fail(store, r, mac="same", ad=ad(4)).repeat
    assert admit(store, ad=ad(4)).allowed
    assert admit(store, ad=ad(4)).reason == "ad_lockout_guard"  # AD counted all three


def test_unknown_user_gives_its_ad_slot_back(store: SqlRegulationStore) -> None:
    for n in range(5):
        fail(store, admit(store, user="nobody", ad=ad(3)).reservation, mac=f"x{n}", bind=False,
             ad=ad(3))
    assert admit(store, user="nobody", ad=ad(3)).reason == "user_banned"  # policy counts it


def test_smart_lockout_familiar_ip_keeps_its_reserve(store: SqlRegulationStore) -> None:
    home = "10.1.2.3"
    store.settle_success(admit(store, ip=home, ad=ad(3)).reservation, now=T0)
    attacker = admit(store, ip="198.51.100.7", ad=ad(3)).reservation
    assert attacker is not None and not attacker.familiar
    fail(store, attacker, ad=ad(3))
    assert admit(store, ip="198.51.100.8", ad=ad(3)).reason == "ad_lockout_guard"
    mine = admit(store, ip=home, ad=ad(3)).reservation
    assert mine is not None and mine.familiar
    store.settle_success(mine, now=T0)  # AD reset badPwdCount; so does the mirror
    assert admit(store, ip="198.51.100.9", ad=ad(3)).allowed


def test_ad_chain_follows_ads_observation_window(store: SqlRegulationStore) -> None:
    """Failures 29 minutes apart keep AD's count growing: a 15-minute sliding window would
    forget them, the chain mirror does not."""
    now = T0
    for n in range(2):
        fail(store, admit(store, now=now, ad=ad(3)).reservation, mac=f"p{n}", now=now,
             ad=ad(3))
        now += timedelta(minutes=29)
    assert admit(store, now=now, ad=ad(3)).reason == "ad_lockout_guard"
    assert admit(store, now=now + timedelta(minutes=32), ad=ad(3)).allowed


def test_success_resets_that_ips_counter_only(store: SqlRegulationStore) -> None:
    for n in range(2):
        fail(store, admit(store, ip="10.0.0.1", per_user=4).reservation, mac=f"a{n}",
             per_user=4)
    fail(store, admit(store, ip="10.0.0.2", per_user=4).reservation, mac="b", per_user=4)
    store.settle_success(admit(store, ip="10.0.0.1", per_user=4).reservation, now=T0)
    # 10.0.0.1's two failures are gone (and it is familiar now); 10.0.0.2's one remains
    allowed = [admit(store, ip="10.0.0.9", per_user=4).allowed for _ in range(4)]
    assert allowed == [True, True, True, False]


def test_ip_spray_bans_the_source(store: SqlRegulationStore) -> None:
    bans = []
    for n in range(4):
        r = admit(store, user=f"user{n}", spray_users=4).reservation
        bans += fail(store, r, mac="Winter2026!", spray_users=4).bans
    assert [(b.subject, b.reason) for b in bans][:1] == [("ip:203.0.113.1", "spray_source")]
    assert admit(store, user="user9", spray_users=4).reason == "spray_source"


def test_password_spray_across_ips_bans_ip_and_password(store: SqlRegulationStore) -> None:
    bans = []
    for n in range(3):
        r = admit(store, user=f"user{n}", ip=f"198.51.100.{n}", spray_users=3).reservation
        bans += fail(store, r, mac="sprayed", spray_users=3).bans
    assert {b.reason for b in bans} == {"password_spray"}
    assert {b.subject for b in bans} == {"ip:198.51.100.2", "pw:sprayed"}
    assert admit(store, user="user7", ip="192.0.2.1", mac="sprayed",
                 spray_users=3).reason == "password_spray"
    assert admit(store, user="user7", ip="192.0.2.1", mac="fresh", spray_users=3).allowed


def test_list_lift_and_purge(store: SqlRegulationStore, engine: Engine) -> None:
    for n in range(3):
        fail(store, admit(store, per_user=3).reservation, mac=f"p{n}", per_user=3)
    assert [b.subject for b in store.active_bans(T0)] == ["user:alice"]
    assert store.lift(["user:alice"], prefixes=["userip:alice|"]) == ["user:alice"]
    assert store.active_bans(T0) == [] and admit(store, per_user=3).allowed
    later = T0 + timedelta(days=2)
    assert store.purge(later, later - timedelta(hours=1)) > 0
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(regulation_users)).scalar() == 0


def test_factor_throttle_is_atomic_and_resets_on_success(store: SqlRegulationStore) -> None:
    lim = rules(factor_failures=3)
    results = race(20, lambda i: store.admit_factor(attempt=f"a{i}", username="alice",
                                                    rules=lim, now=T0))
    assert results.count("") == 3
    ban = store.settle_factor(attempt="a0", username="alice", success=False, rules=lim,
                              now=T0)
    assert ban is not None and ban.reason == "factor_banned"
    assert store.admit_factor(attempt="b", username="alice", rules=lim,
                              now=T0) == "factor_banned"
    assert store.admit_factor(attempt="c", username="bob", rules=lim, now=T0) == ""
    store.settle_factor(attempt="c", username="bob", success=True, rules=lim, now=T0)


def test_neutral_settlement_gives_back_the_attempt(store: SqlRegulationStore) -> None:
    for _ in range(3):
        store.settle_neutral(admit(store, ad=ad(3)).reservation, keep_ad_slot=False, now=T0)
    assert admit(store, ad=ad(3)).allowed  # nothing held
    store.settle_neutral(admit(store, user="bob", ad=ad(2)).reservation,
                         keep_ad_slot=True, now=T0)  # a lost answer: AD may have counted
    assert admit(store, user="bob", ad=ad(2)).reason == "ad_lockout_guard"


def test_a_banned_attempt_is_refused_without_the_write_lock(store: SqlRegulationStore,
                                                             engine: Engine) -> None:
    """Issue 15 item 7: under a flood most attempts are banned; refusing them must not take
    the database's write lock (SQLite has one writer, shared with /verify's audit appends),
    so a refusal answers while another transaction holds the account's row."""
    for n in range(3):
        fail(store, admit(store, per_user=3).reservation, mac=f"p{n}", per_user=3)
    with engine.connect() as holder, ThreadPoolExecutor(1) as pool:
        holder.execute(regulation_users.update().where(regulation_users.c.username == "alice")
                       .values(pending=regulation_users.c.pending))  # holds the write lock
        future = pool.submit(admit, store, per_user=3)
        try:
            verdict = future.result(timeout=5)
        finally:
            holder.rollback()
    assert (verdict.allowed, verdict.reason) == (False, "user_banned")
    assert admit(store, user="bob", per_user=3).allowed  # others still take the locked path
