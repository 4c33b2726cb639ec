"""Plain values shared by every layer. Nothing here does I/O or imports above it."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import TypedDict


class Level(str, Enum):
    """Assurance level a session holds (NIST SP 800-63B AAL, roughly)."""

    NONE = "none"
    PASSWORD = "password"  # noqa: S105 - a level name
    MFA = "mfa"  # AAL2: TOTP or WebAuthn
    PHISHING_RESISTANT = "phishing_resistant"  # AAL3-like: WebAuthn with user verification

    @property
    def rank(self) -> int:
        return _LEVEL_RANK[self]

    def satisfies(self, required: Level) -> bool:
        return self.rank >= required.rank


_LEVEL_RANK = {Level.NONE: 0, Level.PASSWORD: 1, Level.MFA: 2, Level.PHISHING_RESISTANT: 3}


class Outcome(str, Enum):
    """Outcome written to the audit log."""

    ALLOW = "allow"
    CHALLENGE = "challenge"  # 401: log in, step up or re-authenticate
    DENY = "deny"
    SUCCESS = "success"
    FAILURE = "failure"
    ERROR = "error"
    INFO = "info"


@dataclass(frozen=True)
class Identity:
    """Who a directory says the user is."""

    username: str  # canonical, lower-case login name
    display_name: str = ""
    email: str = ""
    groups: frozenset[str] = frozenset()
    stable_id: str = ""  # e.g. AD objectGUID; the file directory uses the username
    source: str = "file"  # which directory vouched for it
    #: when the password was last set, as the directory writes it (AD ``pwdLastSet``, the
    #: users file's ``password_changed_at``); opaque, compared for change only; "" unknown
    password_set_at: str = ""


@dataclass(frozen=True)
class Resource:
    """The request a protected app received, as the proxy reported it."""

    scheme: str
    host: str  # lower-case, without port
    path: str
    method: str
    query: str = ""
    port: int | None = None

    @property
    def url(self) -> str:
        netloc = self.host if self.port is None else f"{self.host}:{self.port}"
        q = f"?{self.query}" if self.query else ""
        return f"{self.scheme}://{netloc}{self.path}{q}"


@dataclass(frozen=True)
class SessionRecord:
    """A server-side session as storage keeps it. The cookie holds only a random token."""

    id_hash: str
    username: str
    groups: frozenset[str]
    level: Level
    created_at: datetime
    auth_time: datetime  # when the current level was last proven
    last_seen: datetime
    expires_at: datetime  # absolute expiry
    client_ip: str
    user_agent: str
    display_name: str = ""
    email: str = ""
    stable_id: str = ""
    source: str = "file"
    refreshed_at: datetime | None = None  # last directory re-read
    data: dict[str, str] = field(default_factory=dict, compare=False, hash=False)


#: C0, DEL and C1 (0x80-0x9f: 0x9b is the 8-bit terminal escape CSI, 0x85 a line break to
#: some readers; a header read as latin-1 carries them), and the Unicode line separators
_CONTROL = {c: f"\\x{c:02x}" for c in (*range(0, 32), *range(127, 160))}
_CONTROL.update({0x2028: "\\u2028", 0x2029: "\\u2029"})


def neutralise(text: str, limit: int = 512) -> str:
    """Escape control characters and line separators (log injection, ASVS 7.3.1), cap length."""
    if len(text) <= limit and text.isascii() and text.isprintable():
        return text  # the common case, checked in C
    cleaned = text.translate(_CONTROL)
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"


@dataclass(frozen=True)
class AuditEvent:
    """One audit record: one per decision, written before the response (ASVS 7.1.3, 7.2.1).

    Never a password, code, secret or cookie in any field. Free-text fields are neutralised
    on construction so no consumer ever sees a raw control character.
    """

    event: str
    outcome: Outcome
    reason: str = ""
    username: str = ""
    client_ip: str = ""
    user_agent: str = ""
    host: str = ""
    path: str = ""
    method: str = ""
    rule_id: str = ""
    policy_digest: str = ""
    request_id: str = ""
    detail: tuple[tuple[str, str], ...] = ()
    time: datetime | None = None  # set by the audit log from its clock

    def __post_init__(self) -> None:
        for name, value, limit in (("username", self.username, 256),
                                   ("user_agent", self.user_agent, 512),
                                   ("host", self.host, 256), ("path", self.path, 2048),
                                   ("method", self.method, 16), ("reason", self.reason, 64)):
            object.__setattr__(self, name, neutralise(value, limit))
        object.__setattr__(self, "detail", tuple(
            (neutralise(k, 64), neutralise(v, 512)) for k, v in self.detail))

    @classmethod
    def for_request(cls, meta: RequestMeta, event: str, outcome: Outcome, reason: str, *,
                    username: str = "", **detail: str) -> AuditEvent:
        """A use case's record of one request: who asked comes from ``meta`` in one place,
        so no caller copies client address, user agent and request id field by field."""
        return cls(event=event, outcome=outcome, reason=reason, username=username,
                   **meta.asked(), detail=tuple(detail.items()))


@dataclass(frozen=True)
class StoredAuditEvent:
    id: int
    time: datetime
    event: AuditEvent


class Asked(TypedDict):
    """``RequestMeta.asked``: the record fields a request fills."""

    client_ip: str
    user_agent: str
    request_id: str
    method: str
    path: str


@dataclass(frozen=True)
class RequestMeta:
    """Who is asking, for audit records written by use cases (never a secret)."""

    client_ip: str = ""
    user_agent: str = ""
    request_id: str = ""
    #: the portal page asked (``POST /login/passkey``, say): the record's ``method`` and ``path``
    method: str = ""
    path: str = ""

    def asked(self) -> Asked:
        """The record fields this request fills: ``AuditEvent(**meta.asked(), ...)``."""
        return {"client_ip": self.client_ip, "user_agent": self.user_agent,
                "request_id": self.request_id, "method": self.method, "path": self.path}
