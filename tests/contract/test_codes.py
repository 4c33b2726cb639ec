"""Single use, against SQLite and PostgreSQL: challenges, recovery and enrolment codes."""
from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from authgate.storage.sql_codes import EnrolmentCodeRow, SqlCodeStore
from authgate.storage.sql_credentials import CredentialRow, SqlCredentialStore

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
    store = SqlCodeStore(engine)
    store.put_challenge(key="k" * 64, purpose="authenticate", username="alice",
                        challenge="c1", expires_at=T0 + timedelta(minutes=2))
    assert store.take_challenge(key="k" * 64, purpose="register", now=T0) is None  # wrong use
    store.put_challenge(key="k" * 64, purpose="authenticate", username="alice",
                        challenge="c1", expires_at=T0 + timedelta(minutes=2))
    assert race(8, lambda: store.take_challenge(key="k" * 64, purpose="authenticate",
                                                 now=T0)).count(True) == 1
    store.put_challenge(key="e" * 64, purpose="authenticate", username="alice",
                        challenge="c2", expires_at=T0 + timedelta(minutes=2))
    assert store.take_challenge(key="e" * 64, purpose="authenticate",
                                now=T0 + timedelta(minutes=3)) is None


def test_recovery_code_spent_once_even_in_a_race(engine: Engine) -> None:
    store = SqlCodeStore(engine)
    store.replace_recovery_codes("alice", [("r1", "h1"), ("r2", "h2")], T0)
    assert race(8, lambda: store.spend_recovery_code("r1", T0)).count(True) == 1
    assert store.unused_recovery_codes("alice") == [("r2", "h2")]
    store.replace_recovery_codes("alice", [("r3", "h3")], T0)  # regenerate: old set gone
    assert store.unused_recovery_codes("alice") == [("r3", "h3")]


def test_enrolment_code_redeemed_once_by_its_user_before_expiry(engine: Engine) -> None:
    store = SqlCodeStore(engine)
    row = EnrolmentCodeRow("id1", "alice", "adam", T0, T0 + timedelta(hours=1), None, None)
    store.add_enrolment_code(row, "hash1")
    assert not store.redeem_enrolment_code(username="bob", code_hash="hash1", now=T0)
    assert not store.redeem_enrolment_code(username="alice", code_hash="hash1",
                                           now=T0 + timedelta(hours=2))
    assert race(8, lambda: store.redeem_enrolment_code(username="alice", code_hash="hash1",
                                                       now=T0)).count(True) == 1
    state = store.enrolment_code_state("hash1")
    assert state is not None and state.used_at == T0


def test_totp_step_accepted_once_even_in_a_race(engine: Engine) -> None:
    store = SqlCredentialStore(engine)
    store.add(CredentialRow("c1", "alice", "totp", "app", True, T0, None, secret="v1.x"))
    assert race(8, lambda: store.accept_step("c1", 1000, T0)).count(True) == 1
    assert not store.accept_step("c1", 999, T0) and store.accept_step("c1", 1001, T0)


def test_sign_count_advances_only_from_the_value_read(engine: Engine) -> None:
    store = SqlCredentialStore(engine)
    store.add(CredentialRow("w1", "alice", "webauthn", "key", True, T0, None,
                            credential_id="abc", public_key="pk", sign_count=5))
    assert race(6, lambda: store.accept_sign_count("w1", old=5, new=6, now=T0)).count(True) == 1
    assert store.get("w1").sign_count == 6  # type: ignore[union-attr]
