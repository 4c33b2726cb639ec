"""The keyed hash chain (ASVS 7.3.3): canonical form and MAC of one record.

``mac = HMAC-SHA256(K, v␟chain_id␟seq␟key_id␟prev␟ts␟event␟…␟detail)``
with ␟ = U+001F and the fields in ``FIELDS`` order; ``prev`` is the MAC of the chain's
previous record (64 zeros for the first). Control characters never reach a stored field
(``model.neutralise``; ``detail`` is ASCII JSON), so the separator is unambiguous, and a
verifier rejects any record whose canonical form does not have exactly ``len(FIELDS) - 1``
separators: no field-shifting between columns. ``K`` is derived from ``secrets.audit_key``
and never stored; ``key_id`` names it so rotated keys keep old records verifiable.
"""
from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from authgate.audit.errors import AuditKeyMissing

FORMAT_VERSION = 1
SEP = "\x1f"
GENESIS = "0" * 64
FIELDS = ("v", "chain_id", "seq", "key_id", "prev", "ts", "event", "outcome", "reason",
          "username", "client_ip", "user_agent", "host", "path", "method", "rule_id",
          "policy_digest", "request_id", "detail")
SEPARATORS = len(FIELDS) - 1
_LABEL = b"authgate audit chain v1"


def canonical(values: Sequence[object]) -> str:
    """The canonical text of a record's sealed fields (in ``FIELDS`` order)."""
    return SEP.join(map(str, values))


def seal(key: bytes, values: Sequence[object]) -> str:
    """The record's MAC (hex)."""
    return hmac.digest(key, canonical(values).encode(), "sha256").hex()


_BLOCK = 64  # SHA-256's block size
_IPAD = bytes(x ^ 0x36 for x in range(256))
_OPAD = bytes(x ^ 0x5C for x in range(256))


class PrekeyedMac:
    """HMAC-SHA256 (RFC 2104) with the key's inner and outer hash states computed once.

    ``H((K ^ opad) || H((K ^ ipad) || m))``, as the standard library's ``hmac`` computes
    it, minus the per-message key schedule: 0.8 µs per record where ``hmac.digest`` takes
    1.6-2 µs here (a million-record verification is mostly this). Tested against ``hmac``.
    """

    __slots__ = ("_inner", "_outer")

    def __init__(self, key: bytes) -> None:
        if len(key) > _BLOCK:
            key = hashlib.sha256(key).digest()
        key = key.ljust(_BLOCK, b"\0")
        self._inner = hashlib.sha256(key.translate(_IPAD))
        self._outer = hashlib.sha256(key.translate(_OPAD))

    def hexdigest(self, data: bytes) -> str:
        inner = self._inner.copy()
        inner.update(data)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest()


def seal_with(keyed: PrekeyedMac, values: Sequence[object]) -> str:
    """``seal`` with a pre-keyed MAC (``Keyring.keyed``)."""
    return keyed.hexdigest(canonical(values).encode())


def derive_key(secret: str) -> bytes:
    """Domain-separated chain key: the configured secret is never used raw."""
    return hmac.digest(secret.encode(), _LABEL, "sha256")


def key_id_of(key: bytes) -> str:
    """A short public name for a key; reveals nothing about it (a MAC of a label)."""
    return hmac.digest(key, b"key id", "sha256").hex()[:16]


@dataclass(frozen=True)
class Keyring:
    """The current chain key and the earlier ones kept for verification."""

    current_id: str
    keys: Mapping[str, bytes] = field(repr=False)
    #: one pre-keyed HMAC-SHA256 per key id
    keyed: Mapping[str, PrekeyedMac] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "keyed", {kid: PrekeyedMac(key)
                                           for kid, key in self.keys.items()})

    @classmethod
    def from_secrets(cls, current: str | None, previous: Sequence[str] = ()) -> Keyring:
        if not current:
            raise AuditKeyMissing("secrets.audit_key is not set: the audit chain needs it")
        keys = {key_id_of(k): k for k in map(derive_key, [*previous, current])}
        return cls(current_id=key_id_of(derive_key(current)), keys=keys)

    @property
    def current(self) -> bytes:
        return self.keys[self.current_id]


@dataclass(frozen=True)
class RecordCheck:
    """The outcome of checking one row against its MAC."""

    mac_ok: bool
    well_formed: bool
    known_key: bool


def check_row(keys: Mapping[str, bytes], values: Sequence[object], mac: str) -> RecordCheck:
    """Recompute a row's MAC (the offline export check uses this; ``verify`` inlines it)."""
    text = canonical(values)
    key = keys.get(str(values[3]))
    if key is None:
        return RecordCheck(False, text.count(SEP) == SEPARATORS, False)
    ok = hmac.compare_digest(hmac.digest(key, text.encode(), "sha256").hex(), mac)
    return RecordCheck(ok, text.count(SEP) == SEPARATORS, True)


def link_digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
