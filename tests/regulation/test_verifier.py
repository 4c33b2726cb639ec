"""Issue 15 finding 6: while the AD guard holds an account, the rightful user still signs in
from a new address, and nothing that is not her password reaches AD.

The login flow (``LoginService`` + ``StoreRegulator``) in front of ``FakeAd`` (badPwdCount as
AD keeps it, threshold 3, ``pwdLastSet`` as a stamp); the verifier store on SQLite and
PostgreSQL. The same attack against the real Samba DC is
tests/ad/test_ad_regulation.py::test_rightful_user_gets_in_while_the_guard_holds."""
from __future__ import annotations

from pathlib import Path

from argon2 import PasswordHasher
from sqlalchemy import Engine, select

from authgate.composition.root import Services
from authgate.core.clock import FixedClock
from authgate.login.password import LoginAttempt, LoginStatus
from authgate.regulation import AttemptOutcome
from authgate.regulation.regulator import StoreRegulator, Vouching
from authgate.regulation.verifier import VERIFIER_HASHER, PasswordVerifier
from authgate.storage.regulation_rows import VerifierRow
from authgate.storage.sql_verifiers import SqlPasswordVerifierStore
from authgate.storage.tables_regulation import regulation_verifiers
from tests.conftest import FAST_HASHER
from tests.regulation.test_regulator import PASSWORD, Build, events, login
from tests.regulation.test_regulator import build as build  # noqa: F401 - the fixture

HOME = "10.20.30.40"


def fast(services: Services) -> StoreRegulator:
    """The production wiring with a cheap argon2 (the real cost is measured in the docs)."""
    regulator = services.regulator
    assert isinstance(regulator, StoreRegulator) and regulator.vouching is not None
    regulator.vouching = Vouching(PasswordVerifier(
        store=SqlPasswordVerifierStore(services.engine), pepper=b"p" * 32,
        clock=FixedClock(), hasher=FAST_HASHER), regulator.vouching.stamp)
    return regulator


def stored(services: Services) -> list[VerifierRow]:
    with services.engine.connect() as conn:
        rows = conn.execute(select(regulation_verifiers)).all()
    return [VerifierRow(r.username, r.verifier, r.password_stamp, r.set_at) for r in rows]


def test_rightful_user_gets_in_while_the_guard_holds(build: Build) -> None:
    services, fake = build(max_failures_per_user=2)
    fast(services)
    assert login(services, "alice", PASSWORD, HOME) is LoginStatus.OK
    for n in range(1000):  # every attempt from a new address
        ip = f"198.18.{n // 200}.{n % 200 + 1}"
        assert login(services, "alice", f"guess-{n}", ip) is LoginStatus.INVALID
    reasons = [e["reason"] for e in events(services, "login.password")]
    assert reasons.count("ad_lockout_guard") >= 998
    binds = fake.binds
    assert login(services, "alice", PASSWORD, "203.0.113.77") is LoginStatus.OK
    assert fake.binds == binds + 1
    assert fake.max_bad < fake.threshold and not fake.locked and fake.bad["alice"] == 0
    success = events(services, "login.password")[-1]
    assert success["reason"] == "password_ok" and "password_verifier" in success["detail"]


def test_a_guarded_attempt_that_misses_the_verifier_never_reaches_ad(build: Build) -> None:
    services, fake = build(max_failures_per_user=2)
    fast(services)
    assert login(services, "bob", PASSWORD, HOME) is LoginStatus.OK
    for n in range(5):
        login(services, "bob", f"x{n}", f"198.51.100.{n}")
    binds = fake.binds
    for n in range(50):
        assert login(services, "bob", f"near-{PASSWORD}-{n}", f"198.51.101.{n}") is \
            LoginStatus.INVALID
    assert fake.binds == binds and fake.max_bad < fake.threshold


def test_without_a_verifier_the_guard_holds_as_before(build: Build) -> None:
    """A user who never signed in through authgate has no verifier: nothing vouches."""
    services, fake = build(max_failures_per_user=2)
    fast(services)
    for n in range(5):
        login(services, "bob", f"x{n}", f"198.51.100.{n}")
    binds = fake.binds
    assert login(services, "bob", PASSWORD, "198.51.102.1") is LoginStatus.INVALID
    assert fake.binds == binds and stored(services) == []


def test_a_reset_in_ad_voids_the_verifier_before_any_bind(build: Build) -> None:
    """pwdLastSet moved (an administrator's reset): the old password matches the verifier
    but is not sent (AD would count it, maybe as the locking failure); the row is deleted."""
    services, fake = build(max_failures_per_user=2)
    fast(services)
    assert login(services, "alice", PASSWORD, HOME) is LoginStatus.OK
    fake.set_password("alice", "Reset-By-The-Desk-1")
    for n in range(5):
        login(services, "alice", f"x{n}", f"198.51.100.{n}")
    binds = fake.binds
    assert login(services, "alice", PASSWORD, "198.51.103.1") is LoginStatus.INVALID
    assert fake.binds == binds and stored(services) == []
    assert fake.max_bad < fake.threshold and not fake.locked


def test_the_verifier_is_peppered_argon2id_one_per_user_replaced_on_success(
        build: Build, clock: FixedClock) -> None:
    services, fake = build()
    assert login(services, "alice", PASSWORD, HOME) is LoginStatus.OK  # production hasher
    [first] = stored(services)
    assert first.verifier.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert PASSWORD not in repr(first) and first.password_stamp == fake.stamp("alice")
    clock.advance(seconds=60)
    assert login(services, "alice", PASSWORD, "10.1.1.1") is LoginStatus.OK
    [second] = stored(services)
    assert second.verifier != first.verifier and second.set_at > first.set_at
    other = PasswordVerifier(store=SqlPasswordVerifierStore(services.engine),
                             pepper=b"not the configured one".ljust(32), clock=clock)
    assert other.match(username="alice", password=PASSWORD) is None  # the pepper is needed
    regulator = services.regulator
    assert isinstance(regulator, StoreRegulator) and regulator.vouching is not None
    assert regulator.vouching.verifier.match(username="alice", password=PASSWORD)


def test_a_password_change_deletes_the_verifier(build: Build) -> None:
    services, _ = build()
    regulator = fast(services)
    assert login(services, "alice", PASSWORD, HOME) is LoginStatus.OK
    assert len(stored(services)) == 1
    admission = regulator.admit_password(username="alice", ip=HOME, password=PASSWORD)
    regulator.record_password(admission=admission, outcome=AttemptOutcome.PASSWORD_CHANGED,
                              password=PASSWORD)
    assert stored(services) == []


def test_locked_account_answers_as_a_wrong_password(build: Build) -> None:
    """Finding 5: AD's 775 comes for any password, so it never shows "contact IT"."""
    services, fake = build()
    assert login(services, "alice", PASSWORD, HOME) is LoginStatus.OK
    fake.locked.add("alice")
    for password, ip in ((PASSWORD, "10.0.0.2"), ("wrong-one", "10.0.0.3")):
        result = services.login.password_step(LoginAttempt("alice", password, ip, "UA", "r"))
        assert result.status is LoginStatus.INVALID
    assert [e["reason"] for e in events(services, "login.password")][-2:] == [
        "account_locked", "account_locked"]


def test_verifier_store_contract(engine: Engine, tmp_path: Path) -> None:
    """SQLite and PostgreSQL: one row per user, replaced, deleted."""
    clock = FixedClock()
    verifier = PasswordVerifier(store=SqlPasswordVerifierStore(engine), pepper=b"k" * 32,
                                clock=clock, hasher=FAST_HASHER)
    assert verifier.match(username="alice", password="pw") is None  # the dummy is checked
    verifier.remember(username="alice", password="pw-1", password_stamp="100")
    verifier.remember(username="alice", password="pw-2", password_stamp="200")
    assert verifier.match(username="alice", password="pw-1") is None
    proof = verifier.match(username="alice", password="pw-2")
    assert proof is not None and proof.password_stamp == "200"
    assert verifier.forget("alice") and not verifier.forget("alice")
    assert verifier.match(username="alice", password="pw-2") is None


def test_production_parameters_are_owasp_argon2id() -> None:
    assert isinstance(VERIFIER_HASHER, PasswordHasher)
    params = VERIFIER_HASHER
    assert (params.time_cost, params.memory_cost, params.parallelism) == (2, 19456, 1)


class CountingHasher(PasswordHasher):
    """FAST_HASHER's parameters, counting argon2id verifications."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=1024, parallelism=1)
        self.verified = 0

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:  # noqa: A002
        self.verified += 1
        return super().verify(hash, password)


def test_a_wrong_guess_reaches_argon2id_only_through_the_prefilter(engine: Engine) -> None:
    """Issue 15 item 7: a flood of guesses at a guarded account costs one HMAC each; only
    those whose 6-bit keyed prefilter matches pay an argon2id verification, and the
    rightful password (which always matches it) is still checked with argon2id."""
    hasher = CountingHasher()
    verifier = PasswordVerifier(store=SqlPasswordVerifierStore(engine), pepper=b"k" * 32,
                                clock=FixedClock(), hasher=hasher)
    verifier.remember(username="alice", password=PASSWORD, password_stamp="100")
    guesses = [f"guess-{n}" for n in range(2000)]
    passing = [g for g in guesses if verifier.prefilter(g) == verifier.prefilter(PASSWORD)]
    assert 0 < len(passing) < len(guesses) / 16  # about 1 in 64, never most of them
    assert all(verifier.match(username="alice", password=g) is None for g in guesses)
    assert hasher.verified == len(passing)
    proof = verifier.match(username="alice", password=PASSWORD)
    assert proof is not None and proof.password_stamp == "100"
    assert hasher.verified == len(passing) + 1
    row = SqlPasswordVerifierStore(engine).get("alice")
    assert row is not None and row.prefilter == verifier.prefilter(PASSWORD)
    assert PASSWORD not in row.verifier and 0 <= row.prefilter < 64


def test_no_verifier_pays_argon2id_at_the_same_rate(engine: Engine) -> None:
    """An account without a row is checked against a per-process random fingerprint and the
    dummy hash: about one guess in 64 pays argon2id there too, so the time does not tell
    whether an account has a verifier; nothing ever matches."""
    hasher = CountingHasher()
    verifier = PasswordVerifier(store=SqlPasswordVerifierStore(engine), pepper=b"k" * 32,
                                clock=FixedClock(), hasher=hasher)
    guesses = [f"guess-{n}" for n in range(2000)]
    assert all(verifier.match(username="nobody", password=g) is None for g in guesses)
    assert 2000 / 256 < hasher.verified < 2000 / 16


def test_a_row_from_before_the_prefilter_is_checked_with_argon2id_every_time(
        engine: Engine) -> None:
    """Migration 0008 adds the column empty: old rows keep vouching, at the old cost."""
    hasher = CountingHasher()
    store = SqlPasswordVerifierStore(engine)
    verifier = PasswordVerifier(store=store, pepper=b"k" * 32, clock=FixedClock(),
                                hasher=hasher)
    verifier.remember(username="bob", password=PASSWORD, password_stamp="7")
    row = store.get("bob")
    assert row is not None
    store.put(VerifierRow(row.username, row.verifier, row.password_stamp, row.set_at, None))
    assert all(verifier.match(username="bob", password=f"g{n}") is None for n in range(50))
    assert hasher.verified == 50
    assert verifier.match(username="bob", password=PASSWORD) is not None


def test_a_verifier_written_before_a_session_key_rotation_still_vouches(engine: Engine) -> None:
    """``keys rotate session`` keeps the old key below the new one: the verifier AD's last
    accepted password was stored under (the old key's pepper) still matches, a wrong guess
    still does not, and the next success rewrites it under the current pepper (issue 18
    item 4: nobody loses what they had by a rotation)."""
    store = SqlPasswordVerifierStore(engine)
    old = PasswordVerifier(store=store, pepper=b"o" * 32, clock=FixedClock(),
                           hasher=FAST_HASHER)
    old.remember(username="alice", password=PASSWORD, password_stamp="100")
    rotated = PasswordVerifier(store=store, pepper=b"n" * 32, clock=FixedClock(),
                               hasher=FAST_HASHER, earlier_peppers=(b"o" * 32,))
    without = PasswordVerifier(store=store, pepper=b"n" * 32, clock=FixedClock(),
                               hasher=FAST_HASHER)
    assert without.match(username="alice", password=PASSWORD) is None
    proof = rotated.match(username="alice", password=PASSWORD)
    assert proof is not None and proof.password_stamp == "100"
    assert all(rotated.match(username="alice", password=f"g{n}") is None for n in range(200))
    rotated.remember(username="alice", password=PASSWORD, password_stamp="100")
    assert without.match(username="alice", password=PASSWORD) is not None


def test_the_rightful_users_own_success_mid_attack_does_not_get_her_name_banned(
        build: Build) -> None:
    """The outside test of issue 15, promise 2, as it broke: her own success from a new
    address reset AD's count, so the attacker's next guess was a real bind, the second
    counted failure, and the per-user ban then refused her right password from every new
    address. A password the verifier vouches for is no guess: the account's own bans and
    throttle do not hold it (the AD guard never did); the attacker's guesses still do."""
    services, fake = build(max_failures_per_user=2)
    fast(services)
    assert login(services, "alice", PASSWORD, HOME) is LoginStatus.OK
    assert login(services, "alice", "guess-a", "198.18.0.1") is LoginStatus.INVALID
    assert login(services, "alice", PASSWORD, "203.0.113.10") is LoginStatus.OK
    assert login(services, "alice", "guess-b", "198.18.0.2") is LoginStatus.INVALID
    reasons = [e["reason"] for e in events(services, "login.password")]
    for n in range(300):  # the attack goes on, every guess from a new address
        assert login(services, "alice", f"guess-{n}", f"198.18.{1 + n // 200}.{n % 200 + 1}") \
            is LoginStatus.INVALID
    reasons = [e["reason"] for e in events(services, "login.password")][len(reasons):]
    assert "user_banned" in reasons or "ad_lockout_guard" in reasons  # guesses stay held
    binds = fake.binds
    for n, ip in enumerate(("203.0.113.20", "203.0.113.21", "192.0.2.99")):
        assert login(services, "alice", PASSWORD, ip) is LoginStatus.OK, n
    assert fake.binds == binds + 3  # each a real bind AD accepted, none a guess
    assert login(services, "alice", "guess-after", "198.18.9.9") is LoginStatus.INVALID
    assert fake.max_bad < fake.threshold and not fake.locked


def test_a_change_through_authgate_keeps_a_verifier_for_the_new_password(
        build: Build) -> None:
    """The outside test of issue 15, round 3: a change on authgate's own page deleted the
    verifier, so right after it one guess from a new address held her new password out of
    every new address until she signed in at her desk. AD has just accepted the new
    password, so the verifier now holds it, under the new pwdLastSet."""
    services, fake = build(max_failures_per_user=2)
    fast(services)
    assert login(services, "alice", PASSWORD, HOME) is LoginStatus.OK
    services.login._password_changer = fake  # the fake AD in the PasswordChanger role
    new = "New-Horse-Battery-2027"
    done = services.login.change_password(
        LoginAttempt("alice", PASSWORD, "203.0.113.60", "UA", "req"), new)
    assert done.changed, done.message
    rows = stored(services)
    assert len(rows) == 1 and rows[0].password_stamp == fake.stamp("alice")
    assert login(services, "alice", "guess-1", "198.18.50.1") is LoginStatus.INVALID
    assert login(services, "alice", "guess-2", "198.18.50.2") is LoginStatus.INVALID
    assert login(services, "alice", new, "203.0.113.61") is LoginStatus.OK
    assert login(services, "alice", PASSWORD, "203.0.113.62") is LoginStatus.INVALID
    assert fake.max_bad < fake.threshold and not fake.locked
