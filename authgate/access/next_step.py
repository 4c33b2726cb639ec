"""What a signed-in user must still prove to reach a target URL: the login flow asks the
policy, never the client (the ``rd`` URL is re-evaluated server-side at every step)."""
from __future__ import annotations

from datetime import datetime
from enum import Enum
from urllib.parse import urlsplit

from authgate.access.forward_auth import break_glass_pending, subject_of
from authgate.access.proxy_headers import IPAddress
from authgate.core.values import Level, Resource, SessionRecord
from authgate.policy import PolicySet, Verdict, decide


class Step(str, Enum):
    DONE = "done"  # the session already suffices
    PASSWORD = "password"  # noqa: S105 - a step name  # log in (again): anonymous, or re-authentication is due
    MFA = "mfa"  # TOTP, WebAuthn or a recovery code
    PHISHING_RESISTANT = "phishing_resistant"  # WebAuthn with user verification only
    DENIED = "denied"  # the policy refuses this user whatever they prove


def resource_of(url: str) -> Resource:
    parts = urlsplit(url)
    return Resource(scheme=parts.scheme, host=(parts.hostname or "").lower(), port=parts.port,
                    path=parts.path or "/", query=parts.query, method="GET")


def next_step(policy_set: PolicySet, *, session: SessionRecord | None, target: Resource,
              ip: IPAddress | None, now: datetime, floor: Level | None = None) -> Step:
    """``floor``: the least level the target needs whatever the policy allows (authgate's
    own consoles, ``access.console_floor``)."""
    if session is not None and break_glass_pending(session):
        return Step.PHISHING_RESISTANT  # break-glass accounts: WebAuthn with UV, always
    decision = decide(policy_set, subject=subject_of(session, ip), resource=target, now=now)
    if decision.verdict is Verdict.ALLOW:
        if floor is None or (session is not None and session.level.satisfies(floor)):
            return Step.DONE
        return _step_to(floor) if session is not None else Step.PASSWORD
    if decision.verdict is Verdict.DENY:
        return Step.DENIED
    if session is None or decision.reason != "step_up" or decision.required is None:
        return Step.PASSWORD  # login_required, reauth_age, reauth_idle
    required = decision.required
    if floor is not None and not required.satisfies(floor):
        required = floor
    return _step_to(required)


def _step_to(level: Level) -> Step:
    if level is Level.PHISHING_RESISTANT:
        return Step.PHISHING_RESISTANT
    if level is Level.MFA:
        return Step.MFA
    return Step.PASSWORD
