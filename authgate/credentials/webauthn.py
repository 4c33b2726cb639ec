"""WebAuthn registration and sign-in (W3C WebAuthn Level 2 §7), state kept here.

Challenges: 256 random bits, stored server-side, bound to the session that asked for them,
single use (taken by a DELETE), short-lived (ASVS 2.9.2, 63B 5.1.4.2). Sign counts: a count
that does not increase is refused and audited as a possible clone (WebAuthn §6.1.1).
"""
from __future__ import annotations

import base64
import hashlib
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from authgate.core.values import Outcome, RequestMeta
from authgate.credentials.factor_audit import FactorAudit, new_id
from authgate.credentials.params import FactorParams
from authgate.factors import (
    authentication_options,
    credential_id_of,
    registration_options,
    verify_authentication,
    verify_registration,
)
from authgate.factors.errors import WebAuthnFailed
from authgate.storage.interfaces import ChallengeStore, CredentialStore
from authgate.storage.rows import ChallengeRow, CredentialRow

#: the AAGUID of an authenticator that hides its model (and of every ``none`` attestation)
ZERO_AAGUID = "00000000-0000-0000-0000-000000000000"
#: expired challenges (abandoned ceremonies) are deleted once every this many new ones
PURGE_EVERY = 200


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def user_handle(username: str) -> bytes:
    """A stable, opaque user handle (no personal data in the authenticator, §14.6.1)."""
    return hashlib.sha256(b"authgate-user:" + username.encode()).digest()[:16]


def meets_policy(row: CredentialRow, params: FactorParams) -> bool:
    """May a sign-in with this credential count as ``phishing_resistant`` under the policy in
    force? With attestation required, only a credential whose attestation was verified at
    registration (its AAGUID stored) and, with an allow-list, whose model is on it; a key
    registered before the policy asked stays a second factor (``mfa``) until re-registered."""
    if not params.attestation_required:
        return True
    if row.aaguid in ("", ZERO_AAGUID):
        return False
    return not params.aaguid_allowlist or row.aaguid.lower() in {
        a.lower() for a in params.aaguid_allowlist}


@dataclass(frozen=True)
class KeyProof:
    """A verified assertion: the authenticator's new sign count, whether the sign-in is
    phishing-resistant, and the audit reason that says which it is."""

    new_sign_count: int
    strong: bool
    reason: str


class WebAuthnService:
    """``params`` is re-read per ceremony step, so an approved policy reload applies at once.

    Abandoned ceremonies leave challenges behind (anyone may ask for passkey options):
    every ``purge_every`` new challenges, the expired ones are deleted.
    """

    def __init__(self, *, store: CredentialStore, challenges: ChallengeStore,
                 params: Callable[[], FactorParams], record: FactorAudit,
                 purge_every: int = PURGE_EVERY) -> None:
        self._store = store
        self._challenges = challenges
        self._params = params
        self._record = record
        self._purge_every = purge_every
        self._kept = itertools.count(1)  # next() is atomic: safe across threads

    def _keep(self, key: str, purpose: str, username: str, challenge: bytes,
              ttl_seconds: int) -> None:
        now = self._record.clock.now()
        self._challenges.put(key=key, purpose=purpose, username=username,
                             challenge=b64url(challenge),
                             expires_at=now + timedelta(seconds=ttl_seconds))
        if next(self._kept) % self._purge_every == 0:
            self._challenges.purge(now)

    def _take(self, key: str, purpose: str) -> tuple[str, bytes]:
        taken = self._challenges.take(key=key, purpose=purpose, now=self._record.clock.now())
        if taken is None:
            raise WebAuthnFailed("challenge_mismatch", "no live challenge for this session")
        return taken.username, unb64url(taken.challenge)

    # -- registration -----------------------------------------------------------------
    def begin_registration(self, *, key: str, username: str, display_name: str) -> str:
        p = self._params()
        existing = [unb64url(r.credential_id) for r in self._store.list_for(username)
                    if r.kind == "webauthn" and r.credential_id]
        options = registration_options(
            rp_id=p.rp_id, rp_name=p.rp_name, user_id=user_handle(username),
            user_name=username, user_display_name=display_name or username,
            exclude_credential_ids=existing, user_verification="required",
            attestation=p.conveyance, resident_key="preferred")
        self._keep(key, "register", username, options.challenge, p.challenge_ttl_seconds)
        return options.options_json

    def finish_registration(self, *, key: str, username: str, name: str, credential_json: str,
                            meta: RequestMeta) -> CredentialRow:
        p = self._params()
        try:
            owner, challenge = self._take(key, "register")
            if owner != username:
                raise WebAuthnFailed("challenge_mismatch", "challenge of another user")
            verified = verify_registration(
                credential_json=credential_json, expected_challenge=challenge,
                expected_rp_id=p.rp_id, expected_origins=list(p.origins),
                require_user_verification=True, aaguid_allowlist=p.aaguid_allowlist,
                attestation_roots=p.attestation_roots if p.attestation_required else None)
            if self._store.by_credential_id(b64url(verified.credential_id)) is not None:
                raise WebAuthnFailed("credential_exists", "already registered (§7.1 step 26)")
        except WebAuthnFailed as exc:
            self._record("enrol.webauthn", Outcome.FAILURE, exc.reason, username=username,
                         meta=meta)
            raise
        row = CredentialRow(
            id=new_id(), username=username, kind="webauthn", name=name[:64] or "Security key",
            active=True, created_at=self._record.clock.now(), last_used_at=None,
            credential_id=b64url(verified.credential_id),
            public_key=b64url(verified.public_key), sign_count=verified.sign_count,
            aaguid=verified.aaguid if verified.attested else "",  # a claim proves nothing
            transports=",".join(verified.transports),
            user_verified=verified.user_verified)
        self._store.add(row)
        self._record("factor.added", Outcome.SUCCESS, "webauthn", username=username, meta=meta,
                     credential=row.id, name=row.name, aaguid=row.aaguid)
        return row

    # -- authentication ---------------------------------------------------------------
    def begin_authentication(self, *, key: str, username: str | None,
                             require_uv: bool) -> str:
        """Options for ``navigator.credentials.get``; no username = passkey (discoverable)."""
        p = self._params()
        allowed = [] if username is None else [
            unb64url(r.credential_id) for r in self._store.list_for(username, active_only=True)
            if r.kind == "webauthn" and r.credential_id]
        options = authentication_options(
            rp_id=p.rp_id, allow_credential_ids=allowed,
            user_verification="required" if require_uv else p.user_verification)
        self._keep(key, "authenticate", username or "", options.challenge,
                   p.challenge_ttl_seconds)
        return options.options_json

    def read_passkey(self, *, key: str, credential_json: str, now: datetime
                     ) -> tuple[ChallengeRow, CredentialRow]:
        """A passkey sign-in's live challenge under ``key`` (left in place: the caller takes
        it in its own transaction, ``login.passkey``) and the credential its assertion
        names. Reads only; ``WebAuthnFailed`` (``challenge_mismatch``, ``malformed``,
        ``unknown_credential``) otherwise."""
        challenge = self._challenges.peek(key=key, purpose="authenticate", now=now)
        if challenge is None or challenge.username:  # a passkey challenge names no user
            raise WebAuthnFailed("challenge_mismatch", "no live passkey challenge")
        return challenge, self._lookup(credential_json)

    def check_assertion(self, *, row: CredentialRow, challenge: bytes, credential_json: str,
                        require_uv: bool, passkey: bool) -> KeyProof:
        """Verify an assertion against ``row`` and the challenge taken for it (W3C WebAuthn
        §7.2; a sign count that did not increase fails ``sign_count_regressed``, §6.1.1).
        ``passkey``: no user was named first, so the assertion's userHandle must be there and
        be ``row``'s owner's (§7.2 step 6). Pure: the caller stores the new sign count."""
        p = self._params()
        verified = verify_authentication(
            credential_json=credential_json, expected_challenge=challenge,
            expected_rp_id=p.rp_id, expected_origins=list(p.origins),
            credential_public_key=unb64url(row.public_key or ""),
            credential_current_sign_count=row.sign_count, require_user_verification=require_uv,
            expected_user_handle=user_handle(row.username) if passkey else None,
            require_user_handle=passkey)  # no user was named first: §7.2 step 6
        strong = verified.user_verified and meets_policy(row, p)
        return KeyProof(new_sign_count=verified.new_sign_count, strong=strong,
                        reason="webauthn_uv" if strong else "webauthn_below_policy"
                        if verified.user_verified else "webauthn_up")

    @staticmethod
    def credential_key(credential_json: str) -> str:
        """The credential id an assertion names (b64url, as stored); ``WebAuthnFailed``
        (``malformed``) when it names none."""
        return b64url(credential_id_of(credential_json))

    def _lookup(self, credential_json: str) -> CredentialRow:
        row = self._store.by_credential_id(self.credential_key(credential_json))
        if row is None or row.kind != "webauthn":
            raise WebAuthnFailed("unknown_credential", "credential not registered")
        return row
