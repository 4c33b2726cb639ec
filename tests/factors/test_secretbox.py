"""Secrets at rest: AES-256-GCM with key ids, associated data and rotation (ASVS 2.8.2)."""
from __future__ import annotations

import ast
import base64
import re
import sys
from pathlib import Path

import pytest

from authgate.core.secretbox import Keyring, SecretBoxError, generate_key_spec

KEY_A = "a:" + base64.b64encode(b"A" * 32).decode()
KEY_B = "b:" + base64.urlsafe_b64encode(b"B" * 32).decode()
AAD = b"totp:credential-17:alice"
SECRET = b"JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


def ring(*specs: str) -> Keyring:
    return Keyring.from_spec(list(specs))


def test_round_trip_and_format() -> None:
    keyring = ring(KEY_A, KEY_B)
    token = keyring.encrypt(SECRET, associated_data=AAD)
    assert re.fullmatch(r"v1\.a\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]+", token)
    assert keyring.decrypt(token, associated_data=AAD) == SECRET
    assert keyring.encrypt(SECRET, associated_data=AAD) != token  # fresh 96-bit nonce


def test_any_key_in_the_ring_decrypts() -> None:
    token = ring(KEY_B).encrypt(SECRET, associated_data=AAD)
    assert ring(KEY_A, KEY_B).decrypt(token, associated_data=AAD) == SECRET


def _swap_char(text: str, at: int) -> str:
    return text[:at] + ("A" if text[at] != "A" else "B") + text[at + 1:]


@pytest.mark.parametrize("part", [2, 3])
@pytest.mark.parametrize("where", [0, -1])
def test_tampering_nonce_or_ciphertext_fails(part: int, where: int) -> None:
    keyring = ring(KEY_A)
    parts = keyring.encrypt(SECRET, associated_data=AAD).split(".")
    parts[part] = _swap_char(parts[part], where % len(parts[part]))
    with pytest.raises(SecretBoxError) as info:
        keyring.decrypt(".".join(parts), associated_data=AAD)
    assert info.value.reason in {"decrypt_failed", "malformed"}


def test_every_ciphertext_byte_is_authenticated() -> None:
    keyring = ring(KEY_A)
    version, kid, nonce, sealed = keyring.encrypt(SECRET, associated_data=AAD).split(".")
    raw = base64.urlsafe_b64decode(sealed + "==")
    for at in range(len(raw)):
        flipped = bytearray(raw)
        flipped[at] ^= 0x80
        text = base64.urlsafe_b64encode(bytes(flipped)).decode().rstrip("=")
        with pytest.raises(SecretBoxError) as info:
            keyring.decrypt(".".join((version, kid, nonce, text)), associated_data=AAD)
        assert info.value.reason == "decrypt_failed"


def test_changing_the_key_id_to_another_known_key_fails() -> None:
    keyring = ring(KEY_A, KEY_B)
    token = keyring.encrypt(SECRET, associated_data=AAD)
    with pytest.raises(SecretBoxError) as info:
        keyring.decrypt(token.replace("v1.a.", "v1.b.", 1), associated_data=AAD)
    assert info.value.reason == "decrypt_failed"


@pytest.mark.parametrize("mangle", [
    lambda t: t.replace("v1.", "v2.", 1), lambda t: t + ".x", lambda t: t.rsplit(".", 1)[0],
    lambda t: t[:-3] + "%%%", lambda t: "", lambda t: t.replace("v1.a.", "v1.a:b.", 1),
    lambda t: t[:-1] if len(t.split(".")[3]) % 4 != 1 else t[:-2],
])
def test_malformed_tokens(mangle) -> None:  # type: ignore[no-untyped-def]
    keyring = ring(KEY_A)
    with pytest.raises(SecretBoxError):
        keyring.decrypt(mangle(keyring.encrypt(SECRET, associated_data=AAD)),
                        associated_data=AAD)


def test_wrong_associated_data_fails() -> None:
    keyring = ring(KEY_A)
    token = keyring.encrypt(SECRET, associated_data=AAD)
    with pytest.raises(SecretBoxError) as info:
        keyring.decrypt(token, associated_data=b"totp:credential-18:mallory")
    assert info.value.reason == "decrypt_failed"


def test_unknown_key_id() -> None:
    token = ring(KEY_B).encrypt(SECRET, associated_data=AAD)
    with pytest.raises(SecretBoxError) as info:
        ring(KEY_A).decrypt(token, associated_data=AAD)
    assert info.value.reason == "unknown_key"


def test_rotation() -> None:
    old = ring(KEY_A)
    token = old.encrypt(SECRET, associated_data=AAD)
    new = ring(KEY_B, KEY_A)  # B is now primary; A kept to read old rows
    assert new.needs_rotation(token) and not old.needs_rotation(token)
    rotated = new.rotate(token, associated_data=AAD)
    assert rotated.startswith("v1.b.") and not new.needs_rotation(rotated)
    assert ring(KEY_B).decrypt(rotated, associated_data=AAD) == SECRET
    assert new.rotate(rotated, associated_data=AAD) == rotated
    with pytest.raises(SecretBoxError):
        new.rotate(token, associated_data=b"other row")


@pytest.mark.parametrize("specs", [
    [], ["a"], ["a:"], ["a:not base64!"], ["a:" + base64.b64encode(b"x" * 16).decode()],
    [KEY_A, KEY_A], ["bad.kid:" + KEY_A.split(":")[1]], [":" + KEY_A.split(":")[1]],
])
def test_invalid_specs(specs: list[str]) -> None:
    with pytest.raises(SecretBoxError) as info:
        Keyring.from_spec(specs)
    assert info.value.reason == "key_spec_invalid"
    for spec in specs:
        secret_part = spec.partition(":")[2]
        if len(secret_part) > 8:
            assert secret_part not in str(info.value)


def test_a_bare_string_is_not_a_list_of_specs() -> None:
    with pytest.raises(SecretBoxError):
        Keyring.from_spec(KEY_A)


def test_key_material_never_shows() -> None:
    keyring = ring(KEY_A, KEY_B)
    assert repr(keyring) == "Keyring(primary='a', kids=('a', 'b'))"
    for spec in (KEY_A, KEY_B):
        assert spec.split(":")[1] not in repr(keyring)
    with pytest.raises(AttributeError):
        keyring.__dict__  # noqa: B018 - slots only, nothing to dump


def test_generated_spec() -> None:
    spec = generate_key_spec("2026-01")
    kid, _, key = spec.partition(":")
    assert kid == "2026-01" and len(base64.urlsafe_b64decode(key)) == 32
    assert generate_key_spec("k") != generate_key_spec("k")
    keyring = Keyring.from_spec([spec])
    assert keyring.decrypt(keyring.encrypt(b"", associated_data=b""), associated_data=b"") == b""
    with pytest.raises(SecretBoxError):
        generate_key_spec("no.dots")


def test_secretbox_is_a_base_layer_module() -> None:
    """Only the standard library, cryptography and authgate.core.errors (it sits beside them)."""
    source = Path(__file__).resolve().parents[2] / "authgate" / "core" / "secretbox.py"
    imported: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text())):
        if isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module)
    foreign = {name for name in imported
               if name.split(".")[0] not in sys.stdlib_module_names
               and name.split(".")[0] != "cryptography" and name != "authgate.core.errors"}
    assert foreign == set()
