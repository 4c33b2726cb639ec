"""The contracts of a login step's one transaction (issue 20 item 1).

A second-factor step's writes (the throttle's reservation and reset, the accepted TOTP
step, the spent recovery code, the taken WebAuthn challenge and new sign count, the session
replaced under a new id, the sealed audit record) commit together or not at all, and so do
a passkey sign-in's (the session started, not replaced, ``login.passkey``): the step's
use case describes them inside ``LoginStepUnit.run`` and the storage layer runs them as one
short transaction on the thread's hot-path connection (``storage.fastpath``). No other
store may be used inside it. (A recovery code's argon2 check is too slow to hold a write
lock for: that step reserves in one transaction and completes in a second,
``login.recovery_step``.)
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, NamedTuple, Protocol, TypeVar

from authgate.core.values import SessionRecord
from authgate.storage.interfaces import RegulationRules
from authgate.storage.rows import ChallengeRow, CredentialRow, RecoveryCodeRow

T = TypeVar("T")


class SealedRecord(NamedTuple):
    """An audit record sealed into its chain, ready to store: the sealed fields in
    canonical order then the MAC, and the chain's registration with its first record."""

    row: tuple[Any, ...]
    register: tuple[Any, ...] | None


class FactorCounters(Protocol):
    """The second-factor throttle's writes (``SqlRegulationStore`` and a step's
    transaction alike)."""

    def admit_factor(self, *, attempt: str, username: str, rules: RegulationRules,
                     now: datetime) -> str:
        """Refuse ("factor_banned", "factor_throttled") or reserve ``attempt`` (counted
        as a failure until cleared) and return ""."""
        ...

    def clear_factor_failures(self, *, username: str, now: datetime) -> None:
        """A second factor succeeded: the user's factor failures are forgotten."""
        ...

    def release_factor(self, *, attempt: str, username: str) -> None:
        """``attempt``'s reservation given back (neither a failure nor a success)."""
        ...


class StepWrites(FactorCounters, Protocol):
    """What a second-factor step reads and writes inside its one transaction."""

    def totp_credentials(self, username: str) -> list[CredentialRow]:
        """The user's active TOTP credentials, oldest first."""
        ...

    def accept_step(self, cred_id: str, step: int, now: datetime) -> bool:
        """Record TOTP step ``step`` as used if it is newer than the last (RFC 6238 5.2);
        False when it is not (a concurrent request spent it first)."""
        ...

    def recovery_codes(self, username: str) -> list[RecoveryCodeRow]:
        """The user's unspent recovery codes (id and argon2id hash)."""
        ...

    def spend_recovery_code(self, code_id: str, now: datetime) -> bool:
        """Mark the code used if it is still unused; False when another request spent it
        first (a conditional UPDATE: of two concurrent uses exactly one wins, ASVS 2.6.1)."""
        ...

    def take_challenge(self, key: str, *, purpose: str, now: datetime) -> ChallengeRow | None:
        """The WebAuthn challenge stored under ``key``, deleted as it is read (single use,
        ASVS 2.9.2: of two concurrent takes exactly one gets it); None when there was none,
        or it was for another purpose or expired (gone all the same), as
        ``ChallengeStore.take``."""
        ...

    def webauthn_credential(self, credential_id: str) -> CredentialRow | None:
        """The active credential with this WebAuthn credential id (b64url)."""
        ...

    def accept_sign_count(self, cred_id: str, *, new: int, now: datetime) -> bool:
        """Store the authenticator's new sign count if it is above the one stored now, or
        both are 0 (no counter), in one atomic statement (WebAuthn §6.1.1); False when it
        is not: a possible clone, or a higher count another sign-in stored first. Judged
        against the stored count, not the one read earlier: two tabs' assertions, the
        higher one committing second, are both accepted (pen test F2b)."""
        ...

    def replace_session(self, old_id_hash: str, record: SessionRecord) -> bool:
        """Delete the old session and store ``record``; False if the old one is gone."""
        ...

    def add_session(self, record: SessionRecord) -> None:
        """Store a new session (a passkey sign-in starts one, ``login.passkey``)."""
        ...

    def end_session(self, id_hash: str) -> bool:
        """Delete a session (the one the browser had before a passkey sign-in); False
        when there was none."""
        ...

    def append_audit(self, record: SealedRecord) -> int:
        """Store a sealed audit record (registering its chain with the first); its id."""
        ...

    def discard(self) -> None:
        """Roll back everything written so far instead of committing it."""
        ...


class LoginStepUnit(Protocol):
    def run(self, work: Callable[[StepWrites], T]) -> T:
        """``work`` inside one transaction, committed when it returns (rolled back if it
        called ``discard``). May run ``work`` again from the start when the database was
        busy, so ``work`` must do nothing but compute and call its ``StepWrites``.
        A database error: ``StorageError``, nothing committed."""
        ...
