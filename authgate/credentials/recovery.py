"""Recovery (look-up) codes: 10 shown once, stored as argon2id hashes, each usable once
(ASVS 2.6.1-2.6.3, NIST 63B 5.1.2.2). Regenerating invalidates the previous set."""
from __future__ import annotations

import re
from collections.abc import Sequence

from argon2 import PasswordHasher

from authgate.core.values import Outcome, RequestMeta
from authgate.credentials.factor_audit import FactorAudit, new_id
from authgate.factors import (
    VerifiedRecoveryCode,
    generate_recovery_codes,
    hash_recovery_code,
    verify_recovery_code,
)
from authgate.factors.codes import ALPHABET
from authgate.factors.errors import InvalidRecoveryCode
from authgate.storage.interfaces import RecoveryCodeStore
from authgate.storage.rows import RecoveryCodeRow

_CODE = re.compile(f"[{re.escape(ALPHABET)}]{{4}}(?:-[{re.escape(ALPHABET)}]{{4}}){{2}}")


class RecoveryService:
    def __init__(self, *, codes: RecoveryCodeStore, hasher: PasswordHasher,
                 record: FactorAudit) -> None:
        self._codes = codes
        self._hasher = hasher
        self._record = record

    def regenerate(self, *, username: str, meta: RequestMeta) -> tuple[str, ...]:
        """New codes for the user, to show once; the old set stops working at once."""
        codes = generate_recovery_codes(10)
        hashed = [RecoveryCodeRow(new_id(), hash_recovery_code(c, hasher=self._hasher))
                  for c in codes]
        self._codes.replace(username, hashed, self._record.clock.now())
        self._record("factor.recovery_codes", Outcome.SUCCESS, "regenerated",
                     username=username, meta=meta, count=str(len(codes)))
        return codes

    def remaining(self, username: str) -> int:
        return len(self._codes.unused(username))

    def check_code(self, *, code: str, codes: Sequence[RecoveryCodeRow]
                   ) -> VerifiedRecoveryCode[str]:
        """The unspent code ``code`` matches (argon2id, one verification per code), or
        ``InvalidRecoveryCode``. Stores nothing: the caller spends the code
        (``login.recovery_step``)."""
        return verify_recovery_code(code=code, hashes=[(r.id, r.code_hash) for r in codes],
                                    hasher=self._hasher)

    def use(self, *, username: str, code: str, meta: RequestMeta) -> int:
        """Spend one code; returns how many are left (shown to the user afterwards)."""
        unused = self._codes.unused(username)
        try:
            verified = self.check_code(code=code, codes=unused)
            if not self._codes.spend(verified.code_id, self._record.clock.now()):
                raise InvalidRecoveryCode("recovery_code_reused")
        except InvalidRecoveryCode as exc:
            self._record("login.recovery", Outcome.FAILURE, exc.reason, username=username,
                         meta=meta)
            raise
        left = len(unused) - 1
        self._record("login.recovery", Outcome.SUCCESS, "recovery_code_used",
                     username=username, meta=meta, remaining=str(left))
        return left


def recovery_codes_file(codes: list[str], *, username: str, issuer: str) -> str | None:
    """The text file staff download to keep their codes (issue 17 item 7), built from the
    codes their own page just showed them; None unless every line is a recovery code, so
    the download can never carry anything else (no markup, no other text)."""
    if not 1 <= len(codes) <= 10 or not all(_CODE.fullmatch(c) for c in codes):
        return None
    lines = [f"{issuer}: recovery codes for {username}",
             "Each code lets you sign in once if you lose your sign-in device.",
             "Keep this file somewhere safe, away from your computer.", "",
             *(f"{n:2}. {c}" for n, c in enumerate(codes, 1)), ""]
    return "\n".join(lines)
