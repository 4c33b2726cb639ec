"""The passkey sign-in use case (``login.passkey``) with a software authenticator
(tests/credentials/soft_key.py): real assertions, checked by the real ceremony. Its one
transaction is tested in tests/credentials/test_passkey_step_transaction.py."""
from __future__ import annotations

import json
import uuid

import pytest
from sqlalchemy import select

from authgate.core.values import Level, RequestMeta
from authgate.credentials.factor_audit import FactorAudit
from authgate.credentials.params import FactorParams
from authgate.credentials.webauthn import WebAuthnService
from authgate.factors.errors import FactorError, WebAuthnFailed
from authgate.login.passkey import PasskeyLogin, PasskeyRefused, challenge_key
from authgate.regulation import FactorOutcome
from authgate.regulation.rate import RateLimiter
from authgate.storage.sql_challenges import SqlChallengeStore
from authgate.storage.sql_login_step import SqlLoginSteps
from authgate.storage.tables_factors import challenges
from tests.credentials.soft_key import AttestationCa, SoftKey
from tests.credentials.test_passkey_step_transaction import (
    forged,
    last_record,
    register,
    signed,
)
from tests.web.test_freshness import events

META = RequestMeta(client_ip="192.0.2.7", user_agent="test", request_id="r1")


def sign_in(passkeys: PasskeyLogin, key: SoftKey, handle: str = "h"):  # type: ignore[no-untyped-def]
    assertion = key.assert_(json.loads(passkeys.options(handle=handle, client_ip="10.0.0.1")))
    return passkeys.sign_in(handle=handle, credential_json=assertion, meta=META)


def test_a_passkey_starts_a_phishing_resistant_session(services) -> None:  # type: ignore[no-untyped-def]
    key = register(services)
    services.passkey_login.options(handle="h", client_ip="10.0.0.1")
    with services.engine.connect() as conn:
        stored = conn.execute(select(challenges.c.id_hash)).scalars().all()
    assert stored == [challenge_key("h")] and challenge_key("h") != "h"
    issued = sign_in(services.passkey_login, key)
    assert issued.record.level is Level.PHISHING_RESISTANT
    assert services.sessions.resolve(issued.token) is not None
    assert events(services, "login.passkey") == [("success", "passkey_uv")]


def test_frequent_passkey_sign_ins_are_never_throttled(services) -> None:  # type: ignore[no-untyped-def]
    """Each admitted attempt is settled: a success never counts as a factor failure."""
    key = register(services)
    limit = services.policies.current.settings.regulation.second_factor_max_failures
    for _ in range(limit + 2):
        sign_in(services.passkey_login, key)
    assert services.regulator.admit_factor(username="alice").allowed


def test_a_disabled_account_is_refused_and_audited(services) -> None:  # type: ignore[no-untyped-def]
    key = register(services, "carol")
    with pytest.raises(PasskeyRefused):
        sign_in(services.passkey_login, key)
    assert events(services, "login.passkey") == [("failure", "account_unavailable")]
    assert services.sessions.sessions_of("carol") == []


def test_a_passkey_without_user_verification_is_refused(services) -> None:  # type: ignore[no-untyped-def]
    """The authenticator did not verify the user (no PIN, no biometric): the assertion
    itself is refused, before the directory is asked."""
    key = register(services)
    key.uv = False
    with pytest.raises(WebAuthnFailed) as caught:
        sign_in(services.passkey_login, key)
    assert caught.value.reason == "user_not_verified"
    assert events(services, "login.webauthn") == [("failure", "user_not_verified")]
    assert events(services, "login.passkey") == []
    assert services.sessions.sessions_of("alice") == []


def test_a_passkey_below_the_policy_is_refused(services) -> None:  # type: ignore[no-untyped-def]
    """User verified, but the policy now requires attested keys and this one was
    registered without attestation: not phishing-resistant, so no passkey sign-in."""
    key = register(services)
    webauthn = WebAuthnService(
        store=services.mfa.credentials, challenges=SqlChallengeStore(services.engine),
        params=lambda: FactorParams(origins=("https://localhost:9091",), attestation="direct",
                                    attestation_roots=(AttestationCa().pem,),
                                    aaguid_allowlist=frozenset({str(uuid.uuid4())})),
        record=FactorAudit(services.audit, services.clock))
    passkeys = PasskeyLogin(webauthn=webauthn, directory=services.directory,
                            regulator=services.regulator, sessions=services.sessions,
                            audit=services.audit, unit=SqlLoginSteps(services.engine),
                            clock=services.clock,
                            limiter=RateLimiter(per_minute=60, clock=services.clock))
    with pytest.raises(PasskeyRefused):
        sign_in(passkeys, key)
    assert events(services, "login.passkey") == [("failure", "refused")]
    assert last_record(services)[4] == {
        "cause": "webauthn_below_policy",
        "credential": services.mfa.credentials.list_for("alice")[0].id}
    assert services.sessions.sessions_of("alice") == []


def test_a_throttled_user_is_refused_even_with_a_good_passkey(services) -> None:  # type: ignore[no-untyped-def]
    key = register(services)
    limit = services.policies.current.settings.regulation.second_factor_max_failures
    for _ in range(limit):
        admission = services.regulator.admit_factor(username="alice")
        assert admission.allowed
        services.regulator.record_factor(admission=admission, outcome=FactorOutcome.FAILURE)
    with pytest.raises(PasskeyRefused):
        sign_in(services.passkey_login, key)
    assert events(services, "login.passkey") == [("failure", "refused")]
    assert services.sessions.sessions_of("alice") == []


def test_a_failed_ceremony_raises_and_starts_nothing(services) -> None:  # type: ignore[no-untyped-def]
    key = register(services)
    with pytest.raises(FactorError):
        services.passkey_login.sign_in(handle="h", credential_json=forged(signed(services, key)),
                                       meta=META)
    assert services.sessions.sessions_of("alice") == []
