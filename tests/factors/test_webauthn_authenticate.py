"""WebAuthn assertions (W3C L3 §7.2) against responses from a real (virtual) authenticator."""
from __future__ import annotations

import json
import random
from dataclasses import FrozenInstanceError
from typing import Any

import pytest
from webauthn.helpers import base64url_to_bytes

from authgate.factors import (
    WebAuthnFailed,
    authentication_options,
    credential_id_of,
    user_handle_of,
)
from tests.factors.webauthn_helpers import (
    BOTH_ORIGINS,
    altered,
    authenticate,
    edit_bytes,
    edit_client_data,
    expect_reason,
    register,
    stored,
)
from tests.vectors import webauthn_vector, webauthn_vector_names

UV = webauthn_vector("authentication_uv")
PASSKEY = webauthn_vector("authentication_passkey")
OTHER_ORIGIN = webauthn_vector("authentication_other_origin")
NO_UV = webauthn_vector("authentication_no_uv")
USER_ID = bytes.fromhex("a1b2c3d4e5f60718293a4b5c6d7e8f90")  # as in record_webauthn.py
SIGN_COUNT_AT = 33  # authenticatorData: rpIdHash(32) flags(1) signCount(4)


def test_good_assertion_with_user_verification() -> None:
    verified = authenticate(UV, require_user_verification=True)
    assert verified.credential_id == credential_id_of(UV.credential_json)
    assert verified.user_verified
    assert verified.new_sign_count > stored("registration_uv").sign_count
    with pytest.raises(FrozenInstanceError):
        verified.new_sign_count = 0  # type: ignore[misc]


def test_passkey_assertion_carries_the_user_handle() -> None:
    assert user_handle_of(PASSKEY.credential_json) == USER_ID
    verified = authenticate(PASSKEY, require_user_verification=True,
                            expected_user_handle=USER_ID)
    assert verified.user_handle == USER_ID


def test_user_handle_must_match_the_identified_user() -> None:
    expect_reason("user_handle_mismatch",
                  lambda: authenticate(PASSKEY, expected_user_handle=b"someone else"))


@pytest.mark.parametrize("absent", ["dropped", None, ""])
def test_a_passkey_assertion_without_its_user_handle_fails(absent: str | None) -> None:
    """§7.2 step 6: when the user was not identified before the ceremony (a passkey),
    userHandle must be present. It is not signed, so anyone can strip it from a genuine
    assertion: the signature still verifies, the check must not be skipped."""
    def strip(credential: dict[str, Any]) -> None:
        if absent == "dropped":
            del credential["response"]["userHandle"]
        else:
            credential["response"]["userHandle"] = absent

    stripped = altered(PASSKEY, strip)
    expect_reason("user_handle_missing", lambda: authenticate(
        PASSKEY, credential_json=stripped, expected_user_handle=USER_ID,
        require_user_handle=True))
    # a security key for a user named first may leave it out (§7.2 step 6, first case)
    assert authenticate(PASSKEY, credential_json=stripped).user_handle is None
    assert authenticate(PASSKEY, expected_user_handle=USER_ID,
                        require_user_handle=True).user_handle == USER_ID
    with pytest.raises(ValueError):  # required, but whose? the caller must say
        authenticate(PASSKEY, require_user_handle=True)


def test_credential_must_be_one_that_was_offered() -> None:
    cid = credential_id_of(UV.credential_json)
    assert authenticate(UV, allowed_credential_ids={cid}).credential_id == cid
    expect_reason("unknown_credential",
                  lambda: authenticate(UV, allowed_credential_ids={b"other"}))


def test_several_origins_are_allowed() -> None:
    for vector in (UV, OTHER_ORIGIN):
        assert authenticate(vector, expected_origins=BOTH_ORIGINS).user_verified
    expect_reason("origin_mismatch", lambda: authenticate(OTHER_ORIGIN,
                                                          expected_origins=[UV.origin]))


def test_wrong_challenge() -> None:
    expect_reason("challenge_mismatch",
                  lambda: authenticate(UV, expected_challenge=PASSKEY.challenge))


def test_wrong_origin() -> None:
    expect_reason("origin_mismatch",
                  lambda: authenticate(UV, expected_origins=["https://localhost:9091"]))


def test_wrong_rp_id() -> None:
    expect_reason("rp_id_mismatch", lambda: authenticate(UV, expected_rp_id="evil.localhost"))


def test_user_verification_required_but_not_performed() -> None:
    assert not authenticate(NO_UV).user_verified
    expect_reason("user_not_verified", lambda: authenticate(NO_UV, require_user_verification=True))


@pytest.mark.parametrize("stored_count_delta", [0, 1, 100])
def test_stale_sign_count_is_a_possible_clone(stored_count_delta: int) -> None:
    new = authenticate(UV).new_sign_count
    expect_reason("sign_count_regressed", lambda: authenticate(
        UV, credential_current_sign_count=new + stored_count_delta))


def test_sign_count_one_below_is_fine() -> None:
    new = authenticate(UV).new_sign_count
    assert authenticate(UV, credential_current_sign_count=new - 1).new_sign_count == new


def test_zero_counters_mean_no_counter() -> None:
    """A genuine assertion with signCount 0 and a stored 0 is fine; with a stored count it
    is a regression. Shown by re-signing is impossible, so only the stored side varies."""
    new = authenticate(UV).new_sign_count
    assert new > 0
    assert authenticate(UV, credential_current_sign_count=0).new_sign_count == new


def test_tampered_signature() -> None:
    def flip(raw: bytearray) -> None:
        raw[-1] ^= 0x01

    tampered = altered(UV, edit_bytes("signature", flip))
    expect_reason("bad_signature", lambda: authenticate(UV, credential_json=tampered))


def test_forged_counter_or_uv_flag_breaks_the_signature() -> None:
    def bump_counter(raw: bytearray) -> None:
        raw[SIGN_COUNT_AT + 3] = (raw[SIGN_COUNT_AT + 3] + 50) % 256

    def set_uv(raw: bytearray) -> None:
        raw[32] |= 0x04

    for change, vector in ((bump_counter, UV), (set_uv, NO_UV)):
        tampered = altered(vector, edit_bytes("authenticatorData", change))
        expect_reason("bad_signature", lambda: authenticate(
            vector, credential_json=tampered, require_user_verification=True))


@pytest.mark.parametrize("signature", ["AAAA", "MAYCAQECAQE", "", "_" * 200])
def test_garbage_signature(signature: str) -> None:
    tampered = altered(UV, lambda c: c["response"].__setitem__("signature", signature))
    expect_reason("bad_signature", lambda: authenticate(UV, credential_json=tampered))


def test_stale_count_with_a_bad_signature_is_not_reported_as_a_clone() -> None:
    tampered = altered(UV, edit_bytes("signature", lambda raw: raw.__setitem__(-1, raw[-1] ^ 1)))
    expect_reason("bad_signature", lambda: authenticate(
        UV, credential_json=tampered, credential_current_sign_count=10_000))


def test_another_authenticators_key_does_not_verify() -> None:
    other = stored("registration_no_uv")
    expect_reason("bad_signature", lambda: authenticate(
        UV, credential_public_key=other.public_key, credential_current_sign_count=0))


@pytest.mark.parametrize("key", [b"", b"\xa0", b"not cbor at all", b"\xa1\x01\x02"])
def test_corrupt_stored_public_key(key: bytes) -> None:
    expect_reason("bad_public_key", lambda: authenticate(UV, credential_public_key=key))


def test_registration_client_data_in_an_assertion_is_the_wrong_ceremony() -> None:
    tampered = altered(UV, edit_client_data(type="webauthn.create"))
    expect_reason("wrong_ceremony", lambda: authenticate(UV, credential_json=tampered))


@pytest.mark.parametrize("credential_json", [
    "", "{", "[1]", "{}", '{"id": "AA", "rawId": "AA", "type": "public-key", "response": {}}',
])
def test_malformed_json(credential_json: str) -> None:
    expect_reason("malformed", lambda: authenticate(UV, credential_json=credential_json))


@pytest.mark.parametrize("field,value", [
    ("signature", "%%%"), ("authenticatorData", "AAAA"), ("authenticatorData", ""),
    ("clientDataJSON", "e30"),  # "{}"
    ("userHandle", 7),
])
def test_malformed_fields(field: str, value: object) -> None:
    tampered = altered(UV, lambda c: c["response"].__setitem__(field, value))
    expect_reason("malformed", lambda: authenticate(UV, credential_json=tampered))


def test_no_library_exception_escapes_random_corruption() -> None:
    """Flip characters anywhere in each recorded response: only WebAuthnFailed may come out
    (or, rarely, success when a flip lands in unused base64 padding bits)."""
    rng = random.Random(6238)
    for name in webauthn_vector_names():
        vector = webauthn_vector(name)
        verify = authenticate if vector.kind == "authentication" else register
        text = vector.credential_json
        for _ in range(150):
            at = rng.randrange(len(text))
            mutated = text[:at] + rng.choice("A_-9z\"{}") + text[at + 1:]
            try:
                verify(vector, credential_json=mutated)
            except WebAuthnFailed:
                pass


def test_credential_id_and_user_handle_helpers() -> None:
    assert credential_id_of(UV.credential_json) == base64url_to_bytes(UV.credential["rawId"])
    assert user_handle_of(UV.credential_json) in (None, USER_ID)
    for bad in ("nope", "{}", '{"id": "AB", "rawId": "AA"}', '{"rawId": 5}'):
        expect_reason("malformed", lambda: credential_id_of(bad))
    expect_reason("malformed", lambda: user_handle_of('{"response": 1}'))
    expect_reason("malformed", lambda: user_handle_of('{"response": {"userHandle": "%"}}'))
    assert user_handle_of('{"response": {"userHandle": null}}') is None


def test_options_for_security_keys_and_for_passkeys() -> None:
    cid = credential_id_of(UV.credential_json)
    keyed = authentication_options(rp_id="localhost", allow_credential_ids=[cid],
                                   user_verification="required")
    options = json.loads(keyed.options_json)
    assert base64url_to_bytes(options["challenge"]) == keyed.challenge
    assert len(keyed.challenge) == 32
    assert options["allowCredentials"] == [{"id": UV.credential["rawId"], "type": "public-key"}]
    assert options["userVerification"] == "required" and options["rpId"] == "localhost"
    passkey = authentication_options(rp_id="localhost", allow_credential_ids=[])
    assert json.loads(passkey.options_json)["allowCredentials"] == []
    assert passkey.challenge != keyed.challenge
    with pytest.raises(ValueError):
        authentication_options(rp_id="localhost", allow_credential_ids=[], challenge=b"1234567")
