"""Readiness (issue 19 item 2): who uses an app whose pending rule raises the level, and
does not yet hold a credential that can reach it, so admins issue enrolment codes *before*
the change is enforced.

Pure, like the preview: what the replay noted (per pending rule, the people whose request it
would decide at a higher level than was required then) and a map user → credential kinds in,
a report out. The caller (``authgate policy preview``, the admin console) reads the
credential store. Which kind reaches which level is the sign-in code's own mapping
(``web/factor_login.py``): ``mfa`` takes an authenticator app (TOTP) or a security key or
passkey; ``phishing_resistant`` only a security key or passkey used with user verification,
and, when the policy asks for attestation, an attested one of an allowed model
(``credentials.webauthn.meets_policy``; NIST SP 800-63B 4.3.2). Recovery codes reach no
level here: without an active device, sign-in sends the user to enrolment.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from authgate.core.values import Level

#: credential kinds: an authenticator app; a security key or passkey that can sign in at
#: ``phishing_resistant``; one that can only be a second factor (registered without user
#: verification, or below the policy's attestation requirement)
TOTP, KEY, KEY_MFA_ONLY = "totp", "webauthn", "webauthn_mfa_only"
#: the kinds that satisfy each level that needs a credential
SATISFIES: dict[Level, frozenset[str]] = {
    Level.MFA: frozenset({TOTP, KEY, KEY_MFA_ONLY}),
    Level.PHISHING_RESISTANT: frozenset({KEY}),
}
_NEEDS = {Level.MFA: "an authenticator app, security key or passkey",
          Level.PHISHING_RESISTANT: "a security key or passkey (with user verification)"}


def credential_kind(*, kind: str, user_verified: bool, meets_attestation: bool) -> str | None:
    """The readiness kind of one *active* stored credential (``CredentialRow`` fields);
    None for a kind that reaches no level."""
    if kind == "totp":
        return TOTP
    if kind == "webauthn":
        return KEY if user_verified and meets_attestation else KEY_MFA_ONLY
    return None


def satisfied(kinds: frozenset[str], level: Level) -> bool:
    """Can someone holding ``kinds`` sign in at ``level``? (``password``: no device needed.)"""
    wanted = SATISFIES.get(level)
    return wanted is None or not kinds.isdisjoint(wanted)


def raises(*, was: Level | None, now: Level) -> bool:
    """Does a rule needing ``now`` raise what was required (``was``; None: denied then,
    which is a gain, not a raise) to a level that needs a credential?"""
    return was is not None and now in SATISFIES and not was.satisfies(now)


@dataclass
class RaisedUse:
    """The people whose requests one pending rule would decide at a raised level."""

    rule_id: str
    level: Level
    report_only: bool
    hosts: dict[str, int] = field(default_factory=dict)
    users: dict[str, tuple[int, datetime]] = field(default_factory=dict)  # count, last seen

    def add(self, host: str, user: str, at: datetime) -> None:
        self.hosts[host] = self.hosts.get(host, 0) + 1
        count, last = self.users.get(user, (0, at))
        self.users[user] = (count + 1, max(last, at))

    def merge(self, other: RaisedUse) -> None:
        for host, n in other.hosts.items():
            self.hosts[host] = self.hosts.get(host, 0) + n
        for user, (n, at) in other.users.items():
            count, last = self.users.get(user, (0, at))
            self.users[user] = (count + n, max(last, at))


@dataclass(frozen=True)
class RuleReadiness:
    """One raising rule: how many people used it, how many are ready, who is not."""

    rule_id: str
    level: Level
    report_only: bool
    hosts: tuple[tuple[str, int], ...]  # most used first
    people: int
    ready: int
    missing: tuple[tuple[str, int, datetime, tuple[str, ...]], ...]  # user, uses, last, kinds

    def to_dict(self) -> dict[str, Any]:
        return {"rule": self.rule_id, "level": self.level.value,
                "report_only": self.report_only, "needs": _NEEDS[self.level],
                "apps": [{"host": h, "requests": n} for h, n in self.hosts],
                "people": self.people, "ready": self.ready,
                "not_ready": [{"user": u, "requests": n,
                               "last_seen": at.isoformat(timespec="seconds"), "holds": list(k)}
                              for u, n, at, k in self.missing]}

    def lines(self, *, top: int = 10) -> list[str]:
        apps = ", ".join(h for h, _ in self.hosts[:3]) + (" …" if len(self.hosts) > 3 else "")
        mode = " (report only)" if self.report_only else ""
        out = [f"readiness {self.rule_id}{mode} needs {self.level.value} on {apps}: "
               f"{self.people} people used it, {self.ready} ready, "
               f"{len(self.missing)} without {_NEEDS[self.level]}"]
        out.extend(f"    not ready: {u} ({n} requests, last {at.isoformat(timespec='seconds')};"
                   f" holds {', '.join(k) or 'no device'})" for u, n, at, k in self.missing[:top])
        if len(self.missing) > top:
            out.append(f"    ... and {len(self.missing) - top} more (--json lists them all)")
        return out


def readiness(raised: Mapping[str, RaisedUse], kinds: Mapping[str, frozenset[str]]
              ) -> tuple[RuleReadiness, ...]:
    """Per raising rule (in id order), the people without a credential for its level;
    a user missing from ``kinds`` holds none."""
    out = []
    for rule_id, use in sorted(raised.items()):
        missing = tuple(
            (user, n, at, tuple(sorted(kinds.get(user, frozenset()))))
            for user, (n, at) in sorted(use.users.items())
            if not satisfied(kinds.get(user, frozenset()), use.level))
        hosts = tuple(sorted(use.hosts.items(), key=lambda item: (-item[1], item[0])))
        out.append(RuleReadiness(rule_id, use.level, use.report_only, hosts, len(use.users),
                                 len(use.users) - len(missing), missing))
    return tuple(out)
