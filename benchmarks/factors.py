"""Per-operation cost of the pure second-factor checks (not a test).

Run: ``.venv/bin/python benchmarks/factors.py [--quick]``

* ``verify_totp``: a 6-digit SHA-1 code at the current step, ±1 window (three HMACs, every
  candidate compared), beside pyotp's own ``TOTP.verify`` for reference;
* ``Keyring.decrypt``: opening the AES-256-GCM-sealed seed, which a TOTP login also does;
* ``verify_authentication``: the recorded ES256 assertion from Chromium's virtual
  authenticator (tests/vectors/webauthn/authentication_uv.json), beside py_webauthn's
  ``verify_authentication_response`` called directly, so the cost of our prechecks shows.

Each figure is the median over several ``timeit`` repeats, in microseconds per operation.
The gateway-level TOTP step (requests/s against a bare Flask app) is measured elsewhere
(benchmarks/totp_step.py). No HTTP here, so no non-2xx count: each operation is checked once
before it is timed and raises if it does not verify.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import timeit
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pyotp  # noqa: E402
from webauthn import verify_authentication_response  # noqa: E402

from authgate.core.secretbox import Keyring, generate_key_spec  # noqa: E402
from authgate.factors import (  # noqa: E402
    verify_authentication,
    verify_registration,
    verify_totp,
)
from tests.vectors import webauthn_vector  # noqa: E402

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


def median_us(operation: Callable[[], object], *, number: int, repeat: int) -> float:
    operation()  # warm up, and fail loudly before timing if it does not verify
    runs = timeit.repeat(operation, number=number, repeat=repeat)
    return statistics.median(runs) / number * 1e6


def totp_cases() -> dict[str, Callable[[], object]]:
    code = pyotp.TOTP(SECRET).at(NOW)
    totp = pyotp.TOTP(SECRET)
    keyring = Keyring.from_spec([generate_key_spec("k1")])
    sealed = keyring.encrypt(SECRET.encode(), associated_data=b"totp:c1:alice")
    return {
        "verify_totp (authgate)": lambda: verify_totp(
            secret=SECRET, code=code, now=NOW, last_accepted_step=None),
        "TOTP.verify (pyotp)": lambda: totp.verify(code, for_time=NOW, valid_window=1),
        "Keyring.decrypt (seed)": lambda: keyring.decrypt(
            sealed, associated_data=b"totp:c1:alice"),
    }


def webauthn_cases() -> dict[str, Callable[[], object]]:
    reg = webauthn_vector("registration_uv")
    stored = verify_registration(credential_json=reg.credential_json,
                                 expected_challenge=reg.challenge, expected_rp_id=reg.rp_id,
                                 expected_origins=[reg.origin],
                                 require_user_verification=True, aaguid_allowlist=None)
    auth = webauthn_vector("authentication_uv")
    common: dict[str, Any] = dict(expected_challenge=auth.challenge, expected_rp_id=auth.rp_id,
                  credential_public_key=stored.public_key,
                  credential_current_sign_count=stored.sign_count,
                  require_user_verification=True)
    return {
        "verify_authentication ES256 (authgate)": lambda: verify_authentication(
            credential_json=auth.credential_json, expected_origins=[auth.origin], **common),
        "verify_authentication_response (py_webauthn)": lambda: (
            verify_authentication_response(credential=auth.credential_json,
                                           expected_origin=auth.origin, **common)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs")
    args = parser.parse_args()
    repeat = 3 if args.quick else 7
    print(f"{'operation':<46} {'median µs/op':>13}")
    for cases, number in ((totp_cases(), 2_000), (webauthn_cases(), 500)):
        for name, operation in cases.items():
            runs = number // 5 if args.quick else number
            print(f"{name:<46} {median_us(operation, number=runs, repeat=repeat):>13.1f}")


if __name__ == "__main__":
    main()
