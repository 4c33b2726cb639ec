"""The second-factor use cases as one value the web layer and admin actions receive."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from authgate.core.secretbox import Keyring
from authgate.credentials.enrolment import EnrolmentService
from authgate.credentials.manage import FactorManager
from authgate.credentials.params import FactorParams
from authgate.credentials.recovery import RecoveryService
from authgate.credentials.totp import TotpService
from authgate.credentials.webauthn import WebAuthnService
from authgate.storage.interfaces import CredentialStore


@dataclass
class SecondFactors:
    """The second-factor use cases, built together by the composition root."""

    totp: TotpService
    webauthn: WebAuthnService
    recovery: RecoveryService
    enrolment: EnrolmentService
    factors: FactorManager
    #: the factor parameters in force now (follows an approved policy reload)
    params: Callable[[], FactorParams]
    keyring: Keyring
    credentials: CredentialStore
