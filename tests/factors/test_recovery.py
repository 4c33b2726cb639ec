"""Recovery codes (NIST 63B §5.1.2, ASVS 2.6): random, argon2id-hashed, matched to one id."""
from __future__ import annotations

import math
import re
from typing import Literal

import pytest
from argon2 import PasswordHasher

from authgate.factors import (
    InvalidRecoveryCode,
    generate_recovery_codes,
    hash_recovery_code,
    verify_recovery_code,
)
from authgate.factors.recovery import ENTROPY_BITS

FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
FORMAT = re.compile(r"[2-9a-km-np-z]{4}-[2-9a-km-np-z]{4}-[2-9a-km-np-z]{4}")


def test_ten_distinct_codes_in_friendly_groups() -> None:
    codes = generate_recovery_codes()
    assert len(codes) == 10 == len(set(codes))
    for code in codes:
        assert FORMAT.fullmatch(code), code
        assert not set(code) & set("01lo")
    assert ENTROPY_BITS >= 50 and 12 * math.log2(32) == ENTROPY_BITS


def test_codes_are_random() -> None:
    seen = {code for _ in range(20) for code in generate_recovery_codes()}
    assert len(seen) == 200


def test_hash_is_argon2id_and_salted() -> None:
    code = generate_recovery_codes(1)[0]
    first, second = (hash_recovery_code(code, hasher=FAST) for _ in range(2))
    assert first.startswith("$argon2id$") and first != second
    assert code not in first and code.replace("-", "") not in first


def test_matching_code_returns_its_id_and_input_is_normalised() -> None:
    codes = generate_recovery_codes(3)
    hashes = [(f"id{n}", hash_recovery_code(code, hasher=FAST)) for n, code in enumerate(codes)]
    typed = f"  {codes[2].upper().replace('-', ' ')} "
    verified = verify_recovery_code(code=typed, hashes=hashes, hasher=FAST)
    assert verified.code_id == "id2" and not verified.needs_rehash
    assert verify_recovery_code(code=codes[0].replace("-", ""), hashes=hashes,
                                hasher=FAST).code_id == "id0"


def test_wrong_or_used_code_is_refused() -> None:
    codes = generate_recovery_codes(2)
    hashes = [(1, hash_recovery_code(codes[0], hasher=FAST))]
    with pytest.raises(InvalidRecoveryCode) as info:
        verify_recovery_code(code=codes[1], hashes=hashes, hasher=FAST)
    assert info.value.reason == "invalid_recovery_code"
    with pytest.raises(InvalidRecoveryCode):  # consumed: the caller removed its row
        verify_recovery_code(code=codes[0], hashes=[], hasher=FAST)


def test_corrupt_rows_are_skipped_not_fatal() -> None:
    code = generate_recovery_codes(1)[0]
    hashes = [(1, "garbage"), (2, "$argon2id$v=19$m=1024,t=1,p=1$bad"),
              (3, hash_recovery_code(code, hasher=FAST))]
    assert verify_recovery_code(code=code, hashes=hashes, hasher=FAST).code_id == 3


def test_weaker_stored_parameters_are_flagged() -> None:
    code = generate_recovery_codes(1)[0]
    stronger = PasswordHasher(time_cost=2, memory_cost=2048, parallelism=1)
    hashes = [(1, hash_recovery_code(code, hasher=FAST))]
    assert verify_recovery_code(code=code, hashes=hashes, hasher=stronger).needs_rehash


@pytest.mark.parametrize("code", ["", "abcd", "k7qm-2xv9-hf3", "k7qm-2xv9-hf3cc", "k7qm-2xv9-hf0c",
                                  "k7qm-2xv9-hfoc", "x" * 10_000])
def test_malformed_input_is_refused_without_hashing(code: str) -> None:
    class NoHashing(PasswordHasher):
        def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
            raise AssertionError("argon2 ran for malformed input")

    with pytest.raises(InvalidRecoveryCode):
        verify_recovery_code(code=code, hashes=[(1, "$argon2id$...")], hasher=NoHashing())


def test_count_bounds() -> None:
    assert len(generate_recovery_codes(1)) == 1
    with pytest.raises(ValueError):
        generate_recovery_codes(0)
    with pytest.raises(ValueError):
        hash_recovery_code("not a code", hasher=FAST)
