"""WebAuthn registration (W3C L3 §7.1) against responses from a real (virtual) authenticator."""
from __future__ import annotations

import json
from dataclasses import FrozenInstanceError

import pytest
from webauthn.helpers import base64url_to_bytes, parse_attestation_object

from authgate.factors import credential_id_of, registration_options
from tests.factors.webauthn_helpers import (
    BOTH_ORIGINS,
    altered,
    edit_bytes,
    edit_client_data,
    expect_reason,
    register,
)
from tests.vectors import webauthn_vector

UV = webauthn_vector("registration_uv")
NO_UV = webauthn_vector("registration_no_uv")
DIRECT = webauthn_vector("registration_direct")
VIRTUAL_AAGUID = "01020304-0506-0708-0102-030405060708"


def test_good_registration_returns_what_to_store() -> None:
    verified = register(UV, require_user_verification=True)
    assert verified.credential_id == credential_id_of(UV.credential_json)
    assert verified.public_key[:1] == b"\xa5"  # a COSE_Key map
    assert verified.user_verified and verified.sign_count >= 0
    assert verified.transports == ("usb",)
    assert verified.device_type == "single_device" and not verified.backed_up
    assert verified.attestation_format == "none"
    with pytest.raises(FrozenInstanceError):
        verified.sign_count = 0  # type: ignore[misc]


def test_packed_attestation_is_verified_and_aaguid_allow_list_applies() -> None:
    verified = register(DIRECT, aaguid_allowlist=frozenset({VIRTUAL_AAGUID.upper()}))
    assert verified.attestation_format == "packed" and verified.aaguid == VIRTUAL_AAGUID
    expect_reason("aaguid_not_allowed", lambda: register(
        DIRECT, aaguid_allowlist=frozenset({"cb69481e-8ff7-4039-93ec-0a2729a154a8"})))
    assert register(DIRECT, aaguid_allowlist=frozenset()).aaguid == VIRTUAL_AAGUID  # optional


def test_tampered_attestation_signature_is_refused() -> None:
    attestation = parse_attestation_object(
        base64url_to_bytes(DIRECT.credential["response"]["attestationObject"]))
    signature = attestation.att_stmt.sig
    assert signature

    def flip(raw: bytearray) -> None:
        at = bytes(raw).index(signature) + len(signature) - 1
        raw[at] ^= 0x01

    tampered = altered(DIRECT, edit_bytes("attestationObject", flip))
    expect_reason("bad_attestation", lambda: register(DIRECT, credential_json=tampered))


def test_several_origins_are_allowed() -> None:
    assert register(UV, expected_origins=list(BOTH_ORIGINS)).user_verified


def test_wrong_challenge() -> None:
    expect_reason("challenge_mismatch",
                  lambda: register(UV, expected_challenge=bytes(32)))


def test_wrong_origin() -> None:
    expect_reason("origin_mismatch",
                  lambda: register(UV, expected_origins=["https://auth.city.test"]))


def test_wrong_rp_id() -> None:
    expect_reason("rp_id_mismatch", lambda: register(UV, expected_rp_id="city.test"))


def test_user_verification_required_but_not_performed() -> None:
    assert not register(NO_UV).user_verified
    expect_reason("user_not_verified", lambda: register(NO_UV, require_user_verification=True))


def test_assertion_client_data_in_a_registration_is_the_wrong_ceremony() -> None:
    tampered = altered(UV, edit_client_data(type="webauthn.get"))
    expect_reason("wrong_ceremony", lambda: register(UV, credential_json=tampered))


def test_cross_origin_iframe_is_refused() -> None:
    tampered = altered(UV, edit_client_data(crossOrigin=True))
    expect_reason("cross_origin", lambda: register(UV, credential_json=tampered))


def test_user_presence_flag_is_required() -> None:
    def clear_up(raw: bytearray) -> None:
        attestation = parse_attestation_object(bytes(raw))
        flags_at = bytes(raw).index(attestation.auth_data.rp_id_hash) + 32
        raw[flags_at] &= ~0x01

    tampered = altered(UV, edit_bytes("attestationObject", clear_up))
    expect_reason("user_not_present", lambda: register(UV, credential_json=tampered))


@pytest.mark.parametrize("credential_json", [
    "", "not json", "[]", "null", "{}", '{"id": "x", "rawId": "x"}', "x" * 70_000,
])
def test_malformed_json(credential_json: str) -> None:
    expect_reason("malformed", lambda: register(UV, credential_json=credential_json))


@pytest.mark.parametrize("field,value", [
    ("attestationObject", "!!not base64!!"),
    ("attestationObject", "oWNmbXQ"),  # truncated CBOR
    ("attestationObject", ""),
    ("clientDataJSON", "bm90IGpzb24"),  # "not json"
    ("clientDataJSON", 42),
])
def test_malformed_fields(field: str, value: object) -> None:
    tampered = altered(UV, lambda c: c["response"].__setitem__(field, value))
    expect_reason("malformed", lambda: register(UV, credential_json=tampered))


def test_id_and_raw_id_must_agree() -> None:
    tampered = altered(UV, lambda c: c.__setitem__("id", NO_UV.credential["id"]))
    expect_reason("malformed", lambda: register(UV, credential_json=tampered))


def test_raw_id_must_be_the_attested_credential() -> None:
    other = NO_UV.credential["rawId"]
    tampered = altered(UV, lambda c: c.update(id=other, rawId=other))
    expect_reason("malformed", lambda: register(UV, credential_json=tampered))


def test_options_carry_a_fresh_challenge_and_the_settings() -> None:
    first = registration_options(
        rp_id="localhost", rp_name="City", user_id=b"\x01" * 16, user_name="alice",
        user_display_name="Alice", exclude_credential_ids=[b"\x02" * 16],
        user_verification="required", attestation="direct", resident_key="required")
    second = registration_options(
        rp_id="localhost", rp_name="City", user_id=b"\x01" * 16, user_name="alice",
        user_display_name="Alice")
    assert len(first.challenge) == 32 and first.challenge != second.challenge
    options = json.loads(first.options_json)
    assert base64url_to_bytes(options["challenge"]) == first.challenge
    assert options["rp"] == {"name": "City", "id": "localhost"}
    assert options["excludeCredentials"] == [{"id": "AgICAgICAgICAgICAgICAg",
                                              "type": "public-key"}]
    assert options["authenticatorSelection"]["userVerification"] == "required"
    assert options["authenticatorSelection"]["requireResidentKey"] is True
    assert options["attestation"] == "direct"
    assert [p["alg"] for p in options["pubKeyCredParams"]] == [-7, -8, -257]


@pytest.mark.parametrize("kwargs", [
    {"challenge": b"short"}, {"user_id": b""}, {"user_id": b"x" * 65},
    {"user_verification": "always"}, {"attestation": "maybe"}, {"resident_key": "yes"},
])
def test_bad_options_are_programming_errors(kwargs: dict[str, object]) -> None:
    base: dict[str, object] = dict(rp_id="localhost", rp_name="City", user_id=b"\x01" * 16,
                                   user_name="alice", user_display_name="Alice")
    with pytest.raises(ValueError):
        registration_options(**{**base, **kwargs})  # type: ignore[arg-type]


def test_a_single_origin_string_is_refused_as_a_programming_error() -> None:
    with pytest.raises(ValueError):
        register(UV, expected_origins="http://localhost:9091")
