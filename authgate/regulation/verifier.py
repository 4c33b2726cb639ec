"""The verifier of the last password Active Directory accepted (issue 15 finding 6).

While the AD lockout guard holds an account, a password attempt goes to AD only when it
matches this verifier and AD's ``pwdLastSet`` has not moved since (so AD would accept it:
the bind cannot add a bad-password count). Every other guarded attempt is refused without a
bind, so the rightful user signs in during an attack and the attacker still never reaches AD.

What is kept, per account, one row: ``argon2id(HMAC-SHA256(pepper, password))`` (RFC 9106,
OWASP's m = 19 MiB, t = 2, p = 1), the ``pwdLastSet`` stamp, and a 6-bit prefilter: the low
bits of ``HMAC-SHA256(pepper, "prefilter" || password)``. The pepper is
``derive_subkey(secret, b"password-verifier")`` (core/keys.py, RFC 5869): it is not in the
database, so a stolen database alone allows no guessing at all; with the secret too, each
guess costs a salted argon2id for one candidate in 64. NIST SP 800-63B 5.1.1.2 (salted,
costly, keyed verifiers).

Why the prefilter (issue 15 item 7): the guard holds an account exactly while it is under
attack, and without it every guess at a guarded account cost one argon2id (about 25 ms of
CPU): a flood of 100 guesses a second needed 2.5 cores. With it, 63 of 64 wrong guesses are
refused after one HMAC; the rightful user's password always passes it and is then checked
with argon2id as before. An account without a row is checked against a per-process random
fingerprint and a dummy hash the same way, so neither the time nor the prefilter tells
whether an account has a verifier.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from authgate.core.clock import Clock
from authgate.storage.interfaces import PasswordVerifierStore
from authgate.storage.regulation_rows import VerifierRow

#: RFC 9106 / OWASP Password Storage Cheat Sheet: argon2id, 19 MiB, 2 passes, 1 lane
#: (about 25 ms here). The pepper, not the cost, is what protects a stolen database.
VERIFIER_HASHER = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)
#: 6 bits: one wrong guess in 64 reaches argon2id (see the module docstring for the trade)
PREFILTER_MASK = 0x3F


@dataclass(frozen=True)
class VerifiedPassword:
    """The attempt matched the account's verifier, stored under ``password_stamp``."""

    password_stamp: str


class PasswordVerifier:
    """Remembers, checks and forgets the verifier; every check costs one argon2id
    verification, against a dummy when the account has none, so the time does not tell."""

    def __init__(self, *, store: PasswordVerifierStore, pepper: bytes, clock: Clock,
                 hasher: PasswordHasher = VERIFIER_HASHER,
                 earlier_peppers: tuple[bytes, ...] = ()) -> None:
        self._store = store
        self._pepper = pepper
        #: from session keys rotated out (``keys rotate session`` keeps them below the new
        #: one): a verifier written before the rotation still vouches until the next success
        #: rewrites it under the current pepper
        self._earlier = earlier_peppers
        self._clock = clock
        self._hasher = hasher
        self._dummy = hasher.hash(secrets.token_hex(16))
        self._dummy_prefilter = secrets.randbelow(PREFILTER_MASK + 1)

    def _peppered(self, password: str, pepper: bytes | None = None) -> str:
        return hmac.new(pepper or self._pepper, password.encode("utf-8", "surrogatepass"),
                        hashlib.sha256).hexdigest()

    def prefilter(self, password: str, pepper: bytes | None = None) -> int:
        """Six bits of a keyed hash, domain-separated from the argon2id input."""
        digest = hmac.new(pepper or self._pepper, b"prefilter\x00" + password.encode(
            "utf-8", "surrogatepass"), hashlib.sha256).digest()
        return digest[-1] & PREFILTER_MASK

    def remember(self, *, username: str, password: str, password_stamp: str) -> None:
        """After AD accepted ``password``: replace the account's verifier."""
        self._store.put(VerifierRow(username, self._hasher.hash(self._peppered(password)),
                                    password_stamp, self._clock.now(),
                                    self.prefilter(password)))

    def match(self, *, username: str, password: str) -> VerifiedPassword | None:
        """One HMAC, then one argon2id verification only when the prefilter matches (a row
        from before migration 0008 has none: always argon2id)."""
        row = self._store.get(username)
        expected = self._dummy_prefilter if row is None else row.prefilter
        for pepper in (self._pepper, *self._earlier):
            if expected is not None and not hmac.compare_digest(
                    bytes([self.prefilter(password, pepper)]), bytes([expected])):
                continue
            try:
                self._hasher.verify(row.verifier if row else self._dummy,
                                    self._peppered(password, pepper))
            except (VerificationError, InvalidHashError):
                continue
            return VerifiedPassword(row.password_stamp) if row else None
        return None

    def forget(self, username: str) -> bool:
        """The password changed (or AD no longer takes it): the verifier is worthless."""
        return self._store.delete(username)
