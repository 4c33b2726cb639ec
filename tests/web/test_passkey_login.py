"""The passkey sign-in use case (``login.passkey``) with a stand-in WebAuthn ceremony: the
ceremony itself is tested with recorded authenticator responses in tests/factors."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest

from authgate.core.values import Level, RequestMeta
from authgate.factors.errors import FactorError, WebAuthnFailed
from authgate.login.passkey import PasskeyLogin, PasskeyRefused, challenge_key
from authgate.regulation import FactorOutcome
from authgate.storage.sql_credentials import CredentialRow
from tests.web.test_freshness import events

META = RequestMeta(client_ip="192.0.2.7", user_agent="test", request_id="r1")


class StandInCeremony:
    """Answers as ``WebAuthnService`` would after checking a passkey for ``username``."""

    def __init__(self, username: str, *, verified: bool = True, fail: bool = False) -> None:
        self.username, self.verified, self.fail = username, verified, fail
        self.keys: list[str] = []

    def begin_authentication(self, *, key: str, username: str | None,
                             require_uv: bool) -> str:
        assert username is None and require_uv
        self.keys.append(key)
        return "{}"

    def finish_authentication(self, *, key: str, credential_json: str, require_uv: bool,
                              meta: RequestMeta) -> tuple[CredentialRow, bool]:
        assert require_uv
        self.keys.append(key)
        if self.fail:
            raise WebAuthnFailed("bad_signature", "stand-in")
        row = CredentialRow(id="cred-1", username=self.username, kind="webauthn", name="key",
                            active=True, created_at=datetime(2026, 1, 1, tzinfo=UTC),
                            last_used_at=None)
        return row, self.verified


def login_for(services, ceremony: StandInCeremony) -> PasskeyLogin:  # type: ignore[no-untyped-def]
    return PasskeyLogin(webauthn=ceremony, directory=services.directory,
                        regulator=services.regulator, sessions=services.sessions,
                        audit=services.audit)


def test_a_passkey_starts_a_phishing_resistant_session(services) -> None:  # type: ignore[no-untyped-def]
    ceremony = StandInCeremony("alice")
    passkeys = login_for(services, ceremony)
    passkeys.options(handle="h")
    issued = passkeys.sign_in(handle="h", credential_json="{}", meta=META)
    assert issued.record.level is Level.PHISHING_RESISTANT
    assert services.sessions.resolve(issued.token) is not None
    assert ceremony.keys == [challenge_key("h")] * 2 and challenge_key("h") != "h"
    assert events(services, "login.passkey") == [("success", "passkey_uv")]


def test_frequent_passkey_sign_ins_are_never_throttled(services) -> None:  # type: ignore[no-untyped-def]
    """Each admitted attempt is settled: a success never counts as a factor failure."""
    passkeys = login_for(services, StandInCeremony("alice"))
    limit = services.policies.current.settings.regulation.second_factor_max_failures
    for _ in range(limit + 2):
        passkeys.sign_in(handle="h", credential_json="{}", meta=META)
    assert services.regulator.admit_factor(username="alice").allowed


def test_a_disabled_account_is_refused_and_audited(services) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(PasskeyRefused):
        login_for(services, StandInCeremony("carol")).sign_in(
            handle="h", credential_json="{}", meta=META)
    assert events(services, "login.passkey") == [("failure", "account_unavailable")]
    assert services.sessions.sessions_of("carol") == []


def test_a_passkey_without_user_verification_is_refused(services) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(PasskeyRefused):
        login_for(services, StandInCeremony("alice", verified=False)).sign_in(
            handle="h", credential_json="{}", meta=META)
    assert events(services, "login.passkey") == [("failure", "refused")]
    assert services.sessions.sessions_of("alice") == []


def test_a_throttled_user_is_refused_even_with_a_good_passkey(services) -> None:  # type: ignore[no-untyped-def]
    limit = services.policies.current.settings.regulation.second_factor_max_failures
    for _ in range(limit):
        admission = services.regulator.admit_factor(username="alice")
        assert admission.allowed
        services.regulator.record_factor(admission=admission, outcome=FactorOutcome.FAILURE)
    with pytest.raises(PasskeyRefused):
        login_for(services, StandInCeremony("alice")).sign_in(
            handle="h", credential_json="{}", meta=META)
    assert events(services, "login.passkey") == [("failure", "refused")]
    assert services.sessions.sessions_of("alice") == []


def test_a_failed_ceremony_raises_and_starts_nothing(services) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(FactorError):
        login_for(services, StandInCeremony("alice", fail=True)).sign_in(
            handle="h", credential_json="{}", meta=META)
    assert services.sessions.sessions_of("alice") == []
