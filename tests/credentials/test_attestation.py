"""Issue 14 finding 3: when the policy requires attested authenticators (an attestation
conveyance other than ``none``, or an AAGUID allow-list), registration verifies attestation
with py_webauthn against the configured roots, and a sign-in with a key that does not meet
the policy in force is not phishing-resistant."""
from __future__ import annotations

import dataclasses
import json
import uuid

import pytest

from authgate.composition.credentials import attestation_roots
from authgate.core.values import RequestMeta
from authgate.credentials.factor_audit import FactorAudit
from authgate.credentials.params import FactorParams
from authgate.credentials.webauthn import WebAuthnService, meets_policy, unb64url
from authgate.factors.errors import WebAuthnFailed
from authgate.storage.sql_challenges import SqlChallengeStore
from tests.credentials.soft_key import AttestationCa, SoftKey

MODEL = uuid.UUID("cb69481e-8ff7-4039-93ec-0a2729a154a8")
ORIGIN = "https://localhost:9091"


class Ceremonies:
    """The WebAuthn service of the test app, with the policy's factor parameters in hand."""

    def __init__(self, services, clock) -> None:  # type: ignore[no-untyped-def]
        self.clock = clock
        self.params = FactorParams(origins=(ORIGIN,))
        self.svc = WebAuthnService(store=services.mfa.credentials,
                                   challenges=SqlChallengeStore(services.engine),
                                   params=lambda: self.params,
                                   record=FactorAudit(services.audit, clock))

    def policy(self, **changes: object) -> None:
        self.params = dataclasses.replace(self.params, **changes)  # type: ignore[arg-type]

    def register(self, key: SoftKey, **how: object):  # type: ignore[no-untyped-def]
        options = json.loads(self.svc.begin_registration(key="r", username="alice",
                                                         display_name="Alice"))
        return self.svc.finish_registration(key="r", username="alice", name="Key",
                                            credential_json=key.register(options, **how),
                                            meta=RequestMeta())

    def sign_in(self, key: SoftKey) -> bool:
        """A passkey's assertion read and checked as a sign-in does: phishing-resistant?"""
        options = json.loads(self.svc.begin_authentication(key="a", username=None,
                                                           require_uv=True))
        assertion = key.assert_(options)
        challenge, row = self.svc.read_passkey(key="a", credential_json=assertion,
                                               now=self.clock.now())
        return self.svc.check_assertion(row=row, challenge=unb64url(challenge.challenge),
                                        credential_json=assertion, require_uv=True,
                                        passkey=True).strong


@pytest.fixture
def ceremonies(services, clock) -> Ceremonies:  # type: ignore[no-untyped-def]
    return Ceremonies(services, clock)


def test_required_attestation_refuses_none_self_and_foreign_chains(ceremonies) -> None:  # type: ignore[no-untyped-def]
    vendor = AttestationCa()
    ceremonies.policy(attestation="direct", attestation_roots=(vendor.pem,))
    assert json.loads(ceremonies.svc.begin_registration(
        key="r", username="alice", display_name="A"))["attestation"] == "direct"
    for how, reason in (({}, "attestation_required"), ({"self_attest": True},
                        "attestation_required"), ({"ca": AttestationCa()}, "bad_attestation")):
        with pytest.raises(WebAuthnFailed) as caught:
            ceremonies.register(SoftKey(aaguid=MODEL.bytes), **how)
        assert caught.value.reason == reason
    row = ceremonies.register(SoftKey(aaguid=MODEL.bytes), ca=vendor)
    assert row.aaguid == str(MODEL)  # proven by the vendor's chain: stored


def test_no_roots_configured_refuses_every_registration(ceremonies) -> None:  # type: ignore[no-untyped-def]
    ceremonies.policy(aaguid_allowlist=frozenset({str(MODEL)}))
    with pytest.raises(WebAuthnFailed) as caught:
        ceremonies.register(SoftKey(aaguid=MODEL.bytes), ca=AttestationCa())
    assert caught.value.reason == "attestation_untrusted"


def test_a_key_below_the_policy_in_force_is_not_phishing_resistant(ceremonies) -> None:  # type: ignore[no-untyped-def]
    plain = SoftKey(aaguid=MODEL.bytes)
    row = ceremonies.register(plain)  # policy "none": the claimed AAGUID is not kept
    assert row.aaguid == "" and ceremonies.sign_in(plain)
    vendor = AttestationCa()
    ceremonies.policy(attestation="direct", attestation_roots=(vendor.pem,),
                      aaguid_allowlist=frozenset({str(MODEL)}))
    assert not ceremonies.sign_in(plain)  # signs in, as mfa only
    attested = SoftKey(aaguid=MODEL.bytes)
    attested_row = ceremonies.register(attested, ca=vendor)
    assert ceremonies.sign_in(attested) and meets_policy(attested_row, ceremonies.params)
    ceremonies.policy(aaguid_allowlist=frozenset({str(uuid.uuid4())}))  # model withdrawn
    assert not ceremonies.sign_in(attested)


def test_roots_file_is_split_into_certificates(tmp_path) -> None:  # type: ignore[no-untyped-def]
    one, two = AttestationCa(), AttestationCa()
    path = tmp_path / "roots.pem"
    path.write_bytes(b"# FIDO MDS roots\n" + one.pem + two.pem)
    assert attestation_roots(str(path)) == (one.pem, two.pem)
    assert attestation_roots("") == ()
