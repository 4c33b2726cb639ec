"""Admin-issued enrolment codes (ASVS 2.3.1, NIST 63B §6.1.2.1)."""
from __future__ import annotations

import hmac
import re

import pytest

from authgate.factors import (
    InvalidCode,
    hash_enrolment_code,
    new_enrolment_code,
    verify_enrolment_code,
)
from authgate.factors.enrolment import ENTROPY_BITS

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))


def test_code_is_random_typable_and_strong_enough() -> None:
    codes = {new_enrolment_code() for _ in range(200)}
    assert len(codes) == 200
    for code in codes:
        assert re.fullmatch(r"([2-9a-km-np-z]{4}-){3}[2-9a-km-np-z]{4}", code), code
    assert ENTROPY_BITS >= 60


def test_hash_is_keyed_deterministic_and_hides_the_code() -> None:
    code = new_enrolment_code()
    digest = hash_enrolment_code(code, key=KEY)
    assert re.fullmatch(r"[0-9a-f]{64}", digest)
    assert digest == hash_enrolment_code(code.upper().replace("-", " "), key=KEY)
    assert digest != hash_enrolment_code(code, key=OTHER_KEY)
    assert code.replace("-", "") not in digest


def test_verify_accepts_the_code_however_typed() -> None:
    code = new_enrolment_code()
    stored = hash_enrolment_code(code, key=KEY)
    verify_enrolment_code(code=code, expected_hash=stored, key=KEY)
    verify_enrolment_code(code=f" {code.upper()} ", expected_hash=stored, key=KEY)
    verify_enrolment_code(code=code.replace("-", ""), expected_hash=stored, key=KEY)


@pytest.mark.parametrize("typed", ["other", "", "x" * 5000, "abcd-efgh-jkmn-pqr0"])
def test_wrong_or_malformed_code_is_refused(typed: str) -> None:
    stored = hash_enrolment_code(new_enrolment_code(), key=KEY)
    with pytest.raises(InvalidCode) as info:
        verify_enrolment_code(code=typed, expected_hash=stored, key=KEY)
    assert info.value.reason == "invalid_code"


def test_another_users_code_or_another_key_is_refused() -> None:
    mine, theirs = new_enrolment_code(), new_enrolment_code()
    with pytest.raises(InvalidCode):
        verify_enrolment_code(code=theirs, expected_hash=hash_enrolment_code(mine, key=KEY),
                              key=KEY)
    with pytest.raises(InvalidCode):
        verify_enrolment_code(code=mine, expected_hash=hash_enrolment_code(mine, key=KEY),
                              key=OTHER_KEY)


def test_comparison_is_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[object] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append(a)
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    code = new_enrolment_code()
    verify_enrolment_code(code=code, expected_hash=hash_enrolment_code(code, key=KEY), key=KEY)
    assert len(calls) == 1


def test_short_key_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        hash_enrolment_code(new_enrolment_code(), key=b"short")
