"""The second-factor services, built together from settings (called by ``root``).

TOTP and WebAuthn parameters come from the policy set, re-read on every use
(``policies.current``), so an approved policy reload applies at once, as regulation does.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from argon2 import PasswordHasher
from sqlalchemy import Engine

from authgate.audit import AuditLog
from authgate.config import Settings
from authgate.core.clock import Clock
from authgate.core.keys import derive_subkey
from authgate.core.secretbox import Keyring
from authgate.credentials.enrolment import EnrolmentService
from authgate.credentials.factor_audit import FactorAudit
from authgate.credentials.manage import FactorManager
from authgate.credentials.params import FactorParams
from authgate.credentials.recovery import RecoveryService
from authgate.credentials.second_factors import SecondFactors
from authgate.credentials.totp import TotpService
from authgate.credentials.webauthn import WebAuthnService
from authgate.policy import PolicySet
from authgate.policy.live import PolicyRuntime
from authgate.sessions.service import SessionService
from authgate.storage.interfaces import CredentialStore
from authgate.storage.sql_challenges import SqlChallengeStore
from authgate.storage.sql_credentials import SqlCredentialStore
from authgate.storage.sql_enrolment_codes import SqlEnrolmentCodeStore
from authgate.storage.sql_recovery_codes import SqlRecoveryCodeStore

#: labelled demo key for secrets at rest, accepted only in demo mode (config refuses it else)
DEMO_ENCRYPTION_KEY = "demo:ZGVtby1pbnNlY3VyZS1rZXktZG8tbm90LXVzZSEhISE="


#: argon2id for recovery codes. They carry 60 random bits, so a light profile costs an
#: attacker with the database as much as a strong one would for a password, while checking a
#: code against all ten stays ~100 ms instead of seconds (a worker is never stalled).
RECOVERY_HASHER = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)


def factor_params(settings: Settings, policy_set: PolicySet) -> FactorParams:
    """TOTP and WebAuthn from the policy set; the relying party from configuration."""
    totp = policy_set.settings.factors.totp
    webauthn = policy_set.settings.factors.webauthn
    base = urlsplit(settings.server.public_url)
    origins = settings.webauthn.origins or (f"{base.scheme}://{base.netloc}",)
    return FactorParams(
        totp_digits=totp.digits, totp_period=totp.period, totp_algorithm=totp.algorithm,
        totp_valid_window=totp.valid_window, issuer=settings.webauthn.rp_name,
        rp_id=settings.webauthn.rp_id, rp_name=settings.webauthn.rp_name, origins=origins,
        user_verification=webauthn.user_verification, attestation=webauthn.attestation,
        aaguid_allowlist=frozenset(webauthn.aaguid_allowlist),
        challenge_ttl_seconds=int(webauthn.challenge_ttl.total_seconds()),
        attestation_roots=attestation_roots(settings.webauthn.attestation_roots_file))


def attestation_roots(path: str) -> tuple[bytes, ...]:
    """The PEM certificates of ``webauthn.attestation_roots_file`` (none when unset; the
    loader has checked the file is readable). Without roots, a policy that requires
    attestation refuses every registration (fail closed)."""
    if not path:
        return ()
    begin, end = b"-----BEGIN CERTIFICATE-----", b"-----END CERTIFICATE-----"
    blocks = Path(path).read_bytes().split(end)
    return tuple(begin + block.split(begin, 1)[1] + end + b"\n" for block in blocks
                 if begin in block)


def live_factor_params(settings: Settings, policies: PolicyRuntime
                       ) -> Callable[[], FactorParams]:
    """The parameters of the policy set in force at each call (recomputed only when the
    runtime holds another policy set: a reload swaps the object)."""
    last: list[tuple[PolicySet, FactorParams]] = []

    def current() -> FactorParams:
        policy_set = policies.current
        if last and last[0][0] is policy_set:
            return last[0][1]
        params = factor_params(settings, policy_set)
        last[:] = [(policy_set, params)]
        return params
    return current


def build_credential_store(engine: Engine) -> CredentialStore:
    """The stored second factors alone (``policy preview``'s readiness reads them)."""
    return SqlCredentialStore(engine)


def build_mfa(settings: Settings, *, engine: Engine, policies: PolicyRuntime, audit: AuditLog,
              clock: Clock, sessions: SessionService, session_key: str,
              recovery_hasher: PasswordHasher | None = None) -> SecondFactors:
    specs = [k.reveal() for k in settings.secrets.encryption_keys] or [DEMO_ENCRYPTION_KEY]
    keyring = Keyring.from_spec(specs)
    record = FactorAudit(audit, clock)
    params = live_factor_params(settings, policies)
    store = SqlCredentialStore(engine)
    recovery_codes = SqlRecoveryCodeStore(engine)
    return SecondFactors(
        totp=TotpService(store=store, keyring=keyring, params=params, record=record),
        webauthn=WebAuthnService(store=store, challenges=SqlChallengeStore(engine),
                                 params=params, record=record),
        recovery=RecoveryService(codes=recovery_codes,
                                 hasher=recovery_hasher or RECOVERY_HASHER, record=record),
        enrolment=EnrolmentService(codes=SqlEnrolmentCodeStore(engine),
                                   key=derive_subkey(session_key, b"enrolment"),
                                   previous_keys=tuple(
                                       derive_subkey(old, b"enrolment") for old in
                                       (settings.secrets.session_key.older()
                                        if settings.secrets.session_key else ())),
                                   record=record),
        factors=FactorManager(store=store, codes=recovery_codes, sessions=sessions,
                              record=record),
        params=params, keyring=keyring, credentials=store)
