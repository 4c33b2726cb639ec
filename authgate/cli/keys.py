"""``authgate keys``: generate and rotate the gateway's keys without downtime.

Every key kind follows cryptography's MultiFernet rule: the **new key writes, the earlier
keys keep reading** until what they wrote has expired (docs/deployment.md, "Rotating keys").
A key file holds the key in use on its first line and earlier keys below it
(``config/secret.py``); the signing key's retired public keys go beside it
(``audit/checkpoints.py: retired_keys_path``). Rotating writes the files only: the running
gateway takes the new keys on ``SIGHUP`` (``systemctl reload authgate``), and every
instance must have reloaded before ``keys rotate totp --reencrypt`` re-seals the seeds.
"""
from __future__ import annotations

import getpass
import os
import secrets
import sys
from datetime import UTC, datetime
from pathlib import Path

import click

from authgate.core.values import AuditEvent, Outcome

KINDS = ("session", "totp", "audit", "signing")


def _operator() -> str:
    return f"cli:{getpass.getuser()}"


@click.group("keys")
def keys_group() -> None:
    """The gateway's keys: session, TOTP encryption, audit chain and audit signing."""


@keys_group.command("generate")
@click.option("--kid", default="", help="Key id (default: a date stamp).")
def keys_generate(kid: str) -> None:
    """Print a new key spec for secrets.encryption_keys (put it first to rotate)."""
    from authgate.core.secretbox import generate_key_spec

    click.echo(generate_key_spec(kid or datetime.now(UTC).strftime("k%Y%m%d")))


@keys_group.command("rotate")
@click.argument("kind", type=click.Choice(KINDS))
@click.option("--reencrypt", is_flag=True,
              help="totp: re-seal every stored seed under the first key (run it after every "
                   "instance has reloaded), instead of adding a key.")
@click.option("--retire-old", is_flag=True,
              help="session: keep no earlier key (suspected compromise: open forms and "
                   "outstanding enrolment codes stop working).")
@click.pass_obj
def keys_rotate(obj: object, kind: str, reencrypt: bool, retire_old: bool) -> None:
    """Put a new KIND key first; earlier keys stay for reading (then reload the gateway)."""
    settings = obj.settings  # type: ignore[attr-defined]
    if reencrypt and kind != "totp":
        raise click.UsageError("--reencrypt applies to totp only")
    if retire_old and kind != "session":
        raise click.UsageError("--retire-old applies to session only (audit keys must stay "
                               "for verification; TOTP keys until --reencrypt has run)")
    if reencrypt:
        _reencrypt(obj)
        return
    if kind == "signing":
        old, new = _rotate_signing(settings.audit.signing_key_file)
    else:
        old, new = _rotate_file(kind, settings, retire_old=retire_old)
    _record(obj, reason=f"{kind}_key_rotated", detail=(("old", old), ("new", new)))
    click.echo(f"{kind} key rotated: {new} writes now, {old} "
               f"{'retired' if retire_old else 'kept for reading'}. Reload every instance "
               "(systemctl reload authgate, or SIGHUP to authgate serve)"
               + ("; then run: authgate keys rotate totp --reencrypt" if kind == "totp"
                  else "."))


def _rotate_file(kind: str, settings: object, *, retire_old: bool) -> tuple[str, str]:
    """Prepend a new key to the key file of ``kind``; returns (old, new) key names."""
    from authgate.core.secretbox import generate_key_spec

    path = _key_file(kind, settings)
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()
             if line.strip()]
    if not lines:
        raise click.ClickException(f"{path} holds no key")
    if kind == "totp":
        kid = datetime.now(UTC).strftime("k%Y%m%d%H%M%S")
        new = generate_key_spec(kid)
        old_name, new_name = lines[0].partition(":")[0], kid
    else:
        new = secrets.token_urlsafe(48)
        old_name, new_name = _fingerprint(lines[0]), _fingerprint(new)
    kept = [] if retire_old else lines
    write_key_file(path, [new, *kept])
    return old_name, new_name


def _key_file(kind: str, settings: object) -> Path:
    secrets_ = settings.secrets  # type: ignore[attr-defined]
    secret = {"session": secrets_.session_key, "audit": secrets_.audit_key,
              "totp": secrets_.encryption_keys[0] if secrets_.encryption_keys else None}[kind]
    name = {"session": "secrets.session_key_file", "audit": "secrets.audit_key_file",
            "totp": "secrets.encryption_keys_file"}[kind]
    if secret is None or not secret.source:
        raise click.ClickException(f"rotation writes the key file: configure {name} "
                                   "(docs/deployment.md, Rotating keys)")
    return Path(secret.source)


def write_key_file(path: Path, lines: list[str]) -> None:
    """Replace ``path`` atomically, mode 0600: a worker starting during the rotation reads
    either the old file or the new one, never half of it."""
    temporary = path.with_name(path.name + ".new")
    temporary.unlink(missing_ok=True)
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
        f.flush()
        os.fsync(f.fileno())
    temporary.replace(path)


def _fingerprint(key: str) -> str:
    """A public name for a secret key (the audit chain's key id construction)."""
    from authgate.audit.chain import chain_key, key_id_of

    return key_id_of(chain_key(key))


def _rotate_signing(signing_key_file: str) -> tuple[str, str]:
    from authgate.audit.checkpoints import rotate_signing_key

    if not signing_key_file:
        raise click.ClickException("no audit.signing_key_file configured: checkpoints are "
                                   "HMAC'd with the audit key (rotate that: keys rotate audit)")
    return rotate_signing_key(signing_key_file)


def _reencrypt(obj: object) -> None:
    """Re-encrypt every stored TOTP seed under the first (primary) key."""
    from authgate.composition.root import build_services
    from authgate.core.secretbox import SecretBoxError
    from authgate.credentials.totp import totp_aad

    svc = build_services(obj.settings)  # type: ignore[attr-defined]
    keyring, store = svc.mfa.keyring, svc.mfa.credentials
    rotated = failed = 0
    for sealed in store.all_secrets():
        if not keyring.needs_rotation(sealed.secret):
            continue
        try:
            store.set_secret(sealed.id, keyring.rotate(
                sealed.secret, associated_data=totp_aad(sealed.id, sealed.username)))
            rotated += 1
        except SecretBoxError:
            failed += 1
    svc.audit.record(AuditEvent(event="keys.rotate", outcome=Outcome.SUCCESS if not failed
                                else Outcome.FAILURE, reason="totp_seeds",
                                detail=(("rotated", str(rotated)), ("failed", str(failed)),
                                        ("primary", keyring.primary_kid), ("by", _operator()))))
    click.echo(f"re-encrypted {rotated} secret(s) under {keyring.primary_kid}; {failed} failed")
    sys.exit(1 if failed else 0)


def _record(obj: object, *, reason: str, detail: tuple[tuple[str, str], ...]) -> None:
    """One ``keys.rotate`` record, written with the keys now in the files (the new audit
    key writes it, the old one still verifies what came before)."""
    from authgate.composition.audit import build_audit_log
    from authgate.config import load_settings
    from authgate.core.clock import SystemClock
    from authgate.storage.engine import make_engine

    settings = load_settings(obj.config_path)  # type: ignore[attr-defined]
    log = build_audit_log(settings, make_engine(settings.storage.url), SystemClock())
    log.record(AuditEvent(event="keys.rotate", outcome=Outcome.SUCCESS, reason=reason,
                          detail=(*detail, ("by", _operator()))))
    log.close()
