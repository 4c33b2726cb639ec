"""Single use, against SQLite and PostgreSQL: challenges, recovery and enrolment codes,
TOTP steps and WebAuthn sign counts. Each store is typed by its Protocol, so the contract is
what is tested, not the SQL class."""
from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from authgate.storage.interfaces import (
    ChallengeStore,
    CredentialStore,
    EnrolmentCodeStore,
    RecoveryCodeStore,
)
from authgate.storage.rows import (
    ChallengeRow,
    CredentialRow,
    EnrolmentCodeRow,
    RecoveryCodeRow,
    SealedSecret,
)
from authgate.storage.sql_challenges import SqlChallengeStore
from authgate.storage.sql_credentials import SqlCredentialStore
from authgate.storage.sql_enrolment_codes import SqlEnrolmentCodeStore
from authgate.storage.sql_login_step import SqlLoginSteps
from authgate.storage.sql_recovery_codes import SqlRecoveryCodeStore
from authgate.storage.step_interfaces import LoginStepUnit

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)


def race(n: int, action) -> list[bool]:  # type: ignore[no-untyped-def]
    results: list[bool] = []
    threads = [threading.Thread(target=lambda: results.append(bool(action()))) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_challenge_is_taken_once_and_expires(engine: Engine) -> None:
    store: ChallengeStore = SqlChallengeStore(engine)
    store.put(key="k" * 64, purpose="authenticate", username="alice",
              challenge="c1", expires_at=T0 + timedelta(minutes=2))
    assert store.take(key="k" * 64, purpose="register", now=T0) is None  # wrong use
    store.put(key="k" * 64, purpose="authenticate", username="alice",
              challenge="c1", expires_at=T0 + timedelta(minutes=2))
    assert race(8, lambda: store.take(key="k" * 64, purpose="authenticate",
                                       now=T0)).count(True) == 1
    store.put(key="e" * 64, purpose="authenticate", username="alice",
              challenge="c2", expires_at=T0 + timedelta(minutes=2))
    assert store.take(key="e" * 64, purpose="authenticate",
                      now=T0 + timedelta(minutes=3)) is None


def test_challenge_taken_is_typed(engine: Engine) -> None:
    store: ChallengeStore = SqlChallengeStore(engine)
    store.put(key="t" * 64, purpose="register", username="alice", challenge="c9",
              expires_at=T0 + timedelta(minutes=2))
    assert store.take(key="t" * 64, purpose="register", now=T0) == ChallengeRow("alice", "c9")


def test_challenge_peeked_is_left_in_place_and_only_if_live(engine: Engine) -> None:
    """A passkey sign-in reads its challenge before its transaction takes it: a peek
    never spends it, and sees it only for its purpose and before it expires."""
    store: ChallengeStore = SqlChallengeStore(engine)
    store.put(key="p" * 64, purpose="authenticate", username="", challenge="c7",
              expires_at=T0 + timedelta(minutes=2))
    assert store.peek(key="p" * 64, purpose="register", now=T0) is None
    assert store.peek(key="p" * 64, purpose="authenticate",
                      now=T0 + timedelta(minutes=2)) is None  # expired
    assert store.peek(key="q" * 64, purpose="authenticate", now=T0) is None
    for _ in range(2):
        assert store.peek(key="p" * 64, purpose="authenticate", now=T0) == ChallengeRow("", "c7")
    assert store.take(key="p" * 64, purpose="authenticate", now=T0) == ChallengeRow("", "c7")
    assert store.peek(key="p" * 64, purpose="authenticate", now=T0) is None


def test_challenge_purge_deletes_only_expired(engine: Engine) -> None:
    store: ChallengeStore = SqlChallengeStore(engine)
    for n, minutes in enumerate((-1, 0, 2)):
        store.put(key=str(n) * 64, purpose="authenticate", username="", challenge=f"c{n}",
                  expires_at=T0 + timedelta(minutes=minutes))
    assert store.purge(T0) == 2
    assert store.purge(T0) == 0
    assert store.take(key="2" * 64, purpose="authenticate", now=T0) is not None


def test_recovery_code_spent_once_even_in_a_race(engine: Engine) -> None:
    store: RecoveryCodeStore = SqlRecoveryCodeStore(engine)
    store.replace("alice", [RecoveryCodeRow("r1", "h1"), RecoveryCodeRow("r2", "h2")], T0)
    assert race(8, lambda: store.spend("r1", T0)).count(True) == 1
    assert store.unused("alice") == [RecoveryCodeRow("r2", "h2")]
    store.replace("alice", [RecoveryCodeRow("r3", "h3")], T0)  # regenerate: old set gone
    assert store.unused("alice") == [RecoveryCodeRow("r3", "h3")]
    assert store.delete_for("alice") == 1 and store.unused("alice") == []


def test_enrolment_code_redeemed_once_by_its_user_before_expiry(engine: Engine) -> None:
    store: EnrolmentCodeStore = SqlEnrolmentCodeStore(engine)
    row = EnrolmentCodeRow("id1", "alice", "adam", T0, T0 + timedelta(hours=1), None, None)
    store.add(row, "hash1")
    assert not store.redeem(username="bob", code_hash="hash1", now=T0)
    assert not store.redeem(username="alice", code_hash="hash1", now=T0 + timedelta(hours=2))
    assert race(8, lambda: store.redeem(username="alice", code_hash="hash1",
                                        now=T0)).count(True) == 1
    state = store.state("hash1")
    assert state is not None and state.used_at == T0


def test_enrolment_code_revoked_once_and_listed(engine: Engine) -> None:
    store: EnrolmentCodeStore = SqlEnrolmentCodeStore(engine)
    store.add(EnrolmentCodeRow("id2", "alice", "adam", T0, T0 + timedelta(hours=1), None,
                               None), "hash2")
    assert store.revoke("id2", T0) and not store.revoke("id2", T0)
    assert not store.redeem(username="alice", code_hash="hash2", now=T0)
    assert [r.revoked_at for r in store.list_for("alice")] == [T0]


def test_totp_step_accepted_once_even_in_a_race(engine: Engine) -> None:
    store: CredentialStore = SqlCredentialStore(engine)
    store.add(CredentialRow("c1", "alice", "totp", "app", True, T0, None, secret="v1.x"))
    assert race(8, lambda: store.accept_step("c1", 1000, T0)).count(True) == 1
    assert not store.accept_step("c1", 999, T0) and store.accept_step("c1", 1001, T0)
    assert store.all_secrets() == [SealedSecret("c1", "alice", "v1.x")]


def test_sign_count_advances_only_above_the_stored_value(engine: Engine) -> None:
    """In a login step's transaction (security key, passkey), one statement judges the
    count against what is stored at that moment (WebAuthn §6.1.1, pen test F2b): of
    concurrent copies exactly one wins, a count at or below the stored one loses (a
    possible clone), a higher one wins whatever count its request had read, and an
    authenticator without a counter stays at 0."""
    store: CredentialStore = SqlCredentialStore(engine)
    for row_id, count in (("w1", 5), ("w0", 0)):
        store.add(CredentialRow(row_id, "alice", "webauthn", "key", True, T0, None,
                                credential_id=row_id, public_key="pk", sign_count=count))
    unit: LoginStepUnit = SqlLoginSteps(engine)

    def accept(row_id: str, new: int) -> bool:
        return unit.run(lambda writes: writes.accept_sign_count(row_id, new=new, now=T0))

    assert race(6, lambda: accept("w1", 6)).count(True) == 1
    assert [accept("w1", n) for n in (6, 4, 0, 9, 8)] == [False, False, False, True, False]
    assert store.get("w1").sign_count == 9  # type: ignore[union-attr]
    assert [accept("w0", 0), accept("w0", 0), accept("w0", 3), accept("w0", 0)] == [
        True, True, True, False]
    assert store.get("w0").sign_count == 3  # type: ignore[union-attr]
