"""Signed checkpoints (ASVS 7.3.3): a signature over every chain's head at a moment.

A checkpoint commits to the head ``(seq, mac)`` of each chain that grew since the previous
one, so deleting a chain's tail (truncation) or a whole chain is detected; checkpoints are
themselves chained (``seq`` and the digest of the previous signature), and each one is also
written as an ``audit.checkpoint`` record that the SIEM sinks copy off the host: the
external copy is what exposes a deleted *latest* checkpoint. Ed25519 (RFC 8032) lets an
auditor verify with the public key alone; without a signing key, checkpoints are HMAC'd
with the chain key (``hmac:`` key ids) and only key holders can check them.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from authgate.audit.chain import GENESIS, Keyring, link_digest
from authgate.audit.errors import (
    AuditKeyMissing,
    CheckpointDeleted,
    CheckpointInvalid,
    UntrustedKey,
)

PAYLOAD_VERSION = 1
#: the one way authgate writes an Ed25519 signature: bytes.fromhex would also take
#: upper case and spaces, letting an edited row or witness line pass (issue 16)
ED25519_HEX = re.compile(r"[0-9a-f]{128}")


class Signer(Protocol):
    key_id: str

    def sign(self, data: bytes) -> str: ...

    def public_pem(self) -> str: ...


class Ed25519Signer:
    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key
        self.public_key = key.public_key()
        self.key_id = public_key_id(self.public_key)

    @classmethod
    def from_file(cls, path: str | Path) -> Ed25519Signer:
        try:
            key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
        except (OSError, ValueError) as exc:
            raise AuditKeyMissing(f"cannot load the audit signing key {path}") from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise AuditKeyMissing(f"{path} is not an Ed25519 private key")
        return cls(key)

    def sign(self, data: bytes) -> str:
        return self._key.sign(data).hex()

    def public_pem(self) -> str:
        return public_pem(self.public_key)


class HmacSigner:
    """Fallback when no signing key is configured: a MAC with the current chain key."""

    def __init__(self, keyring: Keyring) -> None:
        self._key = keyring.current
        self.key_id = "hmac:" + keyring.current_id

    def sign(self, data: bytes) -> str:
        return hmac.digest(self._key, data, "sha256").hex()

    def public_pem(self) -> str:
        return ""


def public_key_id(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "ed25519:" + hashlib.sha256(raw).hexdigest()[:16]


def public_pem(key: Ed25519PublicKey) -> str:
    return key.public_bytes(serialization.Encoding.PEM,
                            serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def load_public_pem(text: str) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(text.encode())
    except ValueError as exc:
        raise UntrustedKey("not a PEM public key") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise UntrustedKey("not an Ed25519 public key")
    return key


def generate_key_file(path: str | Path) -> Ed25519Signer:
    """A new Ed25519 signing key in PKCS#8 PEM, readable by its owner only."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    target = Path(path)
    target.touch(mode=0o600, exist_ok=False)
    target.write_bytes(pem)
    return Ed25519Signer(key)


def split_pems(text: str) -> list[str]:
    """Each PEM block of ``text`` (a trusted-keys file may hold several public keys)."""
    end = "-----END PUBLIC KEY-----"
    return [part.strip() + "\n" + end + "\n" for part in text.split(end)[:-1]
            if part.strip()] or ([text] if text.strip() else [])


def retired_keys_path(signing_key_file: str | Path) -> Path:
    """Where ``authgate keys rotate signing`` keeps the public keys of retired signing keys:
    beside the private key, read by verification as trusted keys (their checkpoints were
    signed before the rotation and must keep verifying)."""
    return Path(f"{signing_key_file}.retired.pem")


def rotate_signing_key(path: str | Path) -> tuple[str, str]:
    """Replace the Ed25519 key in ``path`` by a new one; the old public key is appended to
    :func:`retired_keys_path` first (so no checkpoint is ever signed by a key nobody
    trusts), and the old private key is gone. Returns ``(old key id, new key id)``."""
    old = Ed25519Signer.from_file(path)
    retired = retired_keys_path(path)
    with open(retired, "a", encoding="utf-8") as f:
        f.write(old.public_pem())
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    temporary = Path(f"{path}.new")
    temporary.unlink(missing_ok=True)
    temporary.touch(mode=0o600, exist_ok=False)
    temporary.write_bytes(pem)
    temporary.replace(path)  # atomic: a worker starting now reads the old or the new key
    return old.key_id, Ed25519Signer(key).key_id


@dataclass(frozen=True)
class TrustedKeys:
    """The keys whose signatures verification accepts (current and rotated-out)."""

    public: dict[str, Ed25519PublicKey] = field(default_factory=dict)
    macs: dict[str, bytes] = field(default_factory=dict, repr=False)

    @classmethod
    def build(cls, *, keyring: Keyring | None, signer: Signer | None,
              public_pems: Iterable[str] = ()) -> TrustedKeys:
        blocks = [block for text in public_pems for block in split_pems(text)]
        public = {public_key_id(k): k for k in map(load_public_pem, blocks)}
        if isinstance(signer, Ed25519Signer):
            public[signer.key_id] = signer.public_key
        macs = {"hmac:" + kid: key for kid, key in (keyring.keys.items() if keyring else ())}
        return cls(public=public, macs=macs)

    def verify(self, *, key_id: str, data: bytes, signature: str) -> None:
        """Raise ``UntrustedKey`` or ``CheckpointInvalid``; return None when valid."""
        if key_id in self.public:
            if not ED25519_HEX.fullmatch(signature):  # one spelling only: no case, no spaces
                raise CheckpointInvalid("bad Ed25519 signature (not 128 lower-case hex digits)")
            try:
                self.public[key_id].verify(bytes.fromhex(signature), data)
                return
            except (InvalidSignature, ValueError) as exc:
                raise CheckpointInvalid("bad Ed25519 signature") from exc
        if key_id in self.macs:
            good = hmac.digest(self.macs[key_id], data, "sha256").hex()
            if hmac.compare_digest(good, signature):
                return
            raise CheckpointInvalid("bad checkpoint MAC")
        raise UntrustedKey(f"signature by an untrusted key {key_id}")


@dataclass(frozen=True)
class Checkpoint:
    seq: int
    ts: int
    kind: str
    key_id: str
    payload: str
    signature: str

    @property
    def data(self) -> dict[str, Any]:
        return json.loads(self.payload)  # type: ignore[no-any-return]

    def as_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "ts": self.ts, "kind": self.kind, "key_id": self.key_id,
                "payload": self.payload, "signature": self.signature}


def make_checkpoint(*, signer: Signer, seq: int, previous_signature: str, ts: int, kind: str,
                    max_id: int, heads: Mapping[str, tuple[int, str]],
                    anchors: dict[str, tuple[int, str]] | None = None,
                    cut: int | None = None) -> Checkpoint:
    body: dict[str, Any] = {
        "v": PAYLOAD_VERSION, "seq": seq, "ts": ts, "kind": kind, "max_id": max_id,
        "prev": link_digest(previous_signature) if previous_signature else GENESIS,
        "heads": {c: [s, m] for c, (s, m) in sorted(heads.items())},
    }
    if anchors is not None:
        body["anchors"] = {c: [s, m] for c, (s, m) in sorted(anchors.items())}
        body["cut"] = cut
    payload = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return Checkpoint(seq=seq, ts=ts, kind=kind, key_id=signer.key_id, payload=payload,
                      signature=signer.sign(payload.encode()))


@dataclass(frozen=True)
class VerifiedCheckpoints:
    """What a valid checkpoint sequence commits to."""

    count: int
    latest: Checkpoint | None
    #: chain → {seq: mac} that the stored chain must still hold (unless purged)
    heads: dict[str, dict[int, str]]
    #: chain → (seq, mac) of the last record removed by a retention purge
    anchors: dict[str, tuple[int, str]]
    #: checkpoint seq → (key id, signature): what its sealed ``audit.checkpoint`` names
    signatures: dict[int, tuple[str, str]] = field(default_factory=dict)


def verify_checkpoints(rows: Sequence[Sequence[Any]], *,
                       trusted: TrustedKeys) -> VerifiedCheckpoints:
    """Every checkpoint row, in seq order: signed by a trusted key, numbered without a
    gap, each naming its predecessor. A row the database could hold but authgate never
    writes (a NULL, a BLOB, a key id no configured key knows) is tampering, reported
    as damage to that checkpoint, never as a configuration problem (issue 16)."""
    heads: dict[str, dict[int, str]] = {}
    anchors: dict[str, tuple[int, str]] = {}
    signatures: dict[int, tuple[str, str]] = {}
    expected_prev, latest = GENESIS, None
    checked = [_checked(row, index, trusted) for index, row in enumerate(rows, start=1)]
    for cp, data in checked:  # an edited seq is found at its row, before any gap it makes
        if data.get("seq") != cp.seq:
            raise CheckpointInvalid(f"its seq column ({cp.seq}) is not the signed seq",
                                    seq=cp.seq)
    for index, (cp, data) in enumerate(checked, start=1):
        if cp.seq < index:
            raise CheckpointInvalid(f"checkpoint #{cp.seq} appears twice", seq=cp.seq)
        if cp.seq > index:
            raise CheckpointDeleted(f"checkpoint #{index} is gone (the next one is "
                                    f"#{cp.seq})", seq=index)
        if (data.get("prev") != expected_prev or data.get("kind") != cp.kind
                or data.get("ts") != cp.ts):
            raise CheckpointInvalid("checkpoint does not follow the previous one", seq=cp.seq)
        for chain, (seq, mac) in data.get("heads", {}).items():
            heads.setdefault(chain, {})[int(seq)] = mac
        for chain, (seq, mac) in data.get("anchors", {}).items():
            if chain not in anchors or anchors[chain][0] < seq:
                anchors[chain] = (int(seq), mac)
        signatures[cp.seq] = (cp.key_id, cp.signature)
        expected_prev, latest = link_digest(cp.signature), cp
    return VerifiedCheckpoints(count=len(rows), latest=latest, heads=heads, anchors=anchors,
                               signatures=signatures)


def _checked(row: Sequence[Any], index: int,
             trusted: TrustedKeys) -> tuple[Checkpoint, dict[str, Any]]:
    """One row as a ``Checkpoint`` whose signature verifies, and its signed payload."""
    cp = Checkpoint(*row)
    where = cp.seq if type(cp.seq) is int else index
    if not all(type(v) is str for v in (cp.kind, cp.key_id, cp.payload, cp.signature)) or (
            type(cp.seq) is not int or type(cp.ts) is not int):
        raise CheckpointInvalid("a column holds a value of a type authgate never writes",
                                seq=where)
    try:
        trusted.verify(key_id=cp.key_id, data=cp.payload.encode(), signature=cp.signature)
    except UntrustedKey as exc:
        raise CheckpointInvalid(f"signed by key {cp.key_id[:80]!r}, which no configured key "
                                "knows (edited; or add its public key to "
                                "audit.trusted_public_keys)", seq=where) from exc
    except (CheckpointInvalid, TypeError) as exc:  # TypeError: a non-ASCII signature
        raise CheckpointInvalid(f"bad signature: {exc}"[:120], seq=where) from exc
    data = cp.data
    if type(data) is not dict:
        raise CheckpointInvalid("payload is not a checkpoint", seq=where)
    return cp, data
