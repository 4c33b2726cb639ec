"""The least a session must hold for authgate's own consoles, whatever the policy set says.

The policy decides who reaches what, but a policy set that forgets the portal (or orders its
rules wrongly) must not open the admin console to a password alone: an admin's stolen
password would then issue enrolment codes and so become phishing-resistant access for any
account (pen test of issue #14). So the admin console needs a WebAuthn login with user
verification (ASVS 4.3.1, NIST 63B AAL3) and the audit console a second factor (AAL2), as
floors under the policy: the policy can ask for more, never for less.
"""
from __future__ import annotations

from authgate.core.values import Level, Resource

#: (path prefix on the portal host, the least level held); first match wins
CONSOLE_FLOORS: tuple[tuple[str, Level], ...] = (
    ("/admin", Level.PHISHING_RESISTANT),
    ("/audit", Level.MFA),
)


def console_floor(target: Resource, *, portal_host: str) -> Level | None:
    """The floor for ``target`` if it is one of authgate's consoles, else None."""
    if target.host != portal_host:
        return None
    for prefix, level in CONSOLE_FLOORS:
        if target.path == prefix or target.path.startswith(prefix + "/"):
            return level
    return None
