"""TOTP (RFC 6238): the RFC's vectors, an independent implementation (oathtool), replay rules."""
from __future__ import annotations

import base64
import hmac
import shutil
import subprocess
from datetime import UTC, datetime, timedelta

import pytest

from authgate.factors import (
    CodeReplayed,
    InvalidCode,
    InvalidSecret,
    VerifiedTotp,
    new_totp_secret,
    provisioning_uri,
    time_step_at,
    verify_totp,
)
from tests.vectors import TotpVector, rfc6238_vectors

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"  # 160 bits


def oathtool(secret: str, when: datetime, *, algorithm: str = "sha1", digits: int = 6) -> str:
    """A code from Debian's oathtool, an implementation independent of pyotp. CI installs it,
    so its absence is a failure, not a skip."""
    exe = shutil.which("oathtool")
    assert exe, "oathtool is required: apt-get install oathtool"
    stamp = when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    out = subprocess.run([exe, f"--totp={algorithm}", "-d", str(digits), "-b", secret,
                          "--now", stamp], check=True, capture_output=True, text=True)
    return out.stdout.strip()


@pytest.mark.parametrize("vector", rfc6238_vectors(),
                         ids=lambda v: f"{v.algorithm}-{v.time}")
def test_rfc6238_appendix_b(vector: TotpVector) -> None:
    when = datetime.fromtimestamp(vector.time, UTC)
    verified = verify_totp(secret=vector.secret, code=vector.code, now=when,
                           last_accepted_step=None, digits=vector.digits,
                           period=vector.period, algorithm=vector.algorithm, valid_window=0)
    assert verified == VerifiedTotp(time_step=vector.time // 30, drift=0)


@pytest.mark.parametrize("vector", rfc6238_vectors()[:3], ids=lambda v: v.algorithm)
def test_rfc6238_code_under_another_algorithm_is_refused(vector: TotpVector) -> None:
    other = "SHA512" if vector.algorithm != "SHA512" else "SHA1"
    with pytest.raises(InvalidCode):
        verify_totp(secret=vector.secret, code=vector.code,
                    now=datetime.fromtimestamp(vector.time, UTC),
                    last_accepted_step=None, digits=8, algorithm=other)


@pytest.mark.parametrize("algorithm", ["sha1", "sha256", "sha512"])
def test_oathtool_code_is_accepted(algorithm: str) -> None:
    code = oathtool(SECRET, NOW, algorithm=algorithm)
    verified = verify_totp(secret=SECRET, code=code, now=NOW, last_accepted_step=None,
                           algorithm=algorithm.upper())
    assert verified.time_step == int(NOW.timestamp()) // 30 == time_step_at(NOW)
    assert verified.drift == 0


def test_oathtool_code_with_fresh_secret_and_8_digits() -> None:
    secret = new_totp_secret()
    code = oathtool(secret, NOW, digits=8)
    assert verify_totp(secret=secret, code=code, now=NOW, last_accepted_step=None,
                       digits=8).drift == 0


@pytest.mark.parametrize("offset,drift", [(-1, -1), (1, 1)])
def test_one_step_of_clock_drift_is_accepted(offset: int, drift: int) -> None:
    code = oathtool(SECRET, NOW + timedelta(seconds=30 * offset))
    assert verify_totp(secret=SECRET, code=code, now=NOW, last_accepted_step=None).drift == drift


@pytest.mark.parametrize("steps", [-3, -2, 2, 3])
def test_code_outside_the_window_is_refused(steps: int) -> None:
    code = oathtool(SECRET, NOW + timedelta(seconds=30 * steps))
    with pytest.raises(InvalidCode) as info:
        verify_totp(secret=SECRET, code=code, now=NOW, last_accepted_step=None)
    assert info.value.reason == "invalid_code"


def test_same_code_twice_is_refused_as_a_replay() -> None:
    code = oathtool(SECRET, NOW)
    first = verify_totp(secret=SECRET, code=code, now=NOW, last_accepted_step=None)
    with pytest.raises(CodeReplayed) as info:
        verify_totp(secret=SECRET, code=code, now=NOW + timedelta(seconds=5),
                    last_accepted_step=first.time_step)
    assert info.value.reason == "code_replayed"


def test_previous_step_after_current_was_accepted_is_refused() -> None:
    accepted = verify_totp(secret=SECRET, code=oathtool(SECRET, NOW), now=NOW,
                           last_accepted_step=None)
    older = oathtool(SECRET, NOW - timedelta(seconds=30))  # still inside the ±1 window
    with pytest.raises(CodeReplayed):
        verify_totp(secret=SECRET, code=older, now=NOW, last_accepted_step=accepted.time_step)


def test_next_step_after_current_is_accepted() -> None:
    accepted = verify_totp(secret=SECRET, code=oathtool(SECRET, NOW), now=NOW,
                           last_accepted_step=None)
    later = NOW + timedelta(seconds=30)
    again = verify_totp(secret=SECRET, code=oathtool(SECRET, later), now=later,
                        last_accepted_step=accepted.time_step)
    assert again.time_step == accepted.time_step + 1


def test_code_from_three_steps_ago_is_refused_even_without_history() -> None:
    code = oathtool(SECRET, NOW - timedelta(seconds=90))
    with pytest.raises(InvalidCode):
        verify_totp(secret=SECRET, code=code, now=NOW, last_accepted_step=None)


def test_spaces_as_apps_display_them_are_ignored() -> None:
    code = oathtool(SECRET, NOW)
    assert verify_totp(secret=SECRET, code=f" {code[:3]} {code[3:]} ", now=NOW,
                       last_accepted_step=None).drift == 0


@pytest.mark.parametrize("code", ["", "12345", "1234567", "12345a", "１２３４５６", "12-456",
                                  "+12345", "1" * 1000, "٣٣٣٣٣٣"])
def test_malformed_codes_are_refused_without_computing(code: str,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: object) -> str:
        raise AssertionError("an HMAC was computed for malformed input")

    monkeypatch.setattr("pyotp.TOTP.generate_otp", boom)
    with pytest.raises(InvalidCode):
        verify_totp(secret=SECRET, code=code, now=NOW, last_accepted_step=None)


def test_every_window_candidate_is_compared_in_constant_time(
        monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    verify_totp(secret=SECRET, code=oathtool(SECRET, NOW - timedelta(seconds=30)), now=NOW,
                last_accepted_step=None)
    assert len(calls) == 3  # no early exit on the first match


@pytest.mark.parametrize("secret", ["not base32!", "JBSWY3DP", ""])
def test_bad_stored_secret_is_a_factor_error_that_does_not_echo_it(secret: str) -> None:
    with pytest.raises(InvalidSecret) as info:
        verify_totp(secret=secret, code="123456", now=NOW, last_accepted_step=None)
    assert info.value.reason == "secret_invalid"
    assert secret not in str(info.value) or not secret
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_time_must_be_timezone_aware() -> None:
    with pytest.raises(ValueError):
        verify_totp(secret=SECRET, code="123456", now=datetime(2026, 1, 5, 12),
                    last_accepted_step=None)


@pytest.mark.parametrize("kwargs", [{"digits": 5}, {"digits": 9}, {"period": 0},
                                    {"algorithm": "MD5"}, {"valid_window": -1}])
def test_unsupported_parameters_are_programming_errors(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        verify_totp(secret=SECRET, code="123456", now=NOW, last_accepted_step=None,
                    **kwargs)  # type: ignore[arg-type]


def test_new_secret_is_160_random_bits_in_base32() -> None:
    secrets = {new_totp_secret() for _ in range(50)}
    assert len(secrets) == 50
    for secret in secrets:
        assert len(secret) == 32 and "=" not in secret
        assert len(base64.b32decode(secret)) == 20


def test_provisioning_uri() -> None:
    uri = provisioning_uri(secret=SECRET, account_name="alice", issuer="City of Example")
    assert uri.startswith("otpauth://totp/City%20of%20Example:alice?")
    assert f"secret={SECRET}" in uri and "issuer=City%20of%20Example" in uri
    assert "digits" not in uri and "period" not in uri  # defaults omitted for old apps
    custom = provisioning_uri(secret=SECRET, account_name="alice", issuer="City", digits=8,
                              period=60, algorithm="SHA256")
    assert "digits=8" in custom and "period=60" in custom and "algorithm=SHA256" in custom


def test_result_is_frozen() -> None:
    verified = verify_totp(secret=SECRET, code=oathtool(SECRET, NOW), now=NOW,
                           last_accepted_step=None)
    with pytest.raises(AttributeError):
        verified.time_step = 0  # type: ignore[misc]
