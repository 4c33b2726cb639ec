"""``authgate enrol`` (admin-issued enrolment codes) and ``authgate keys`` (secrets at rest)."""
from __future__ import annotations

import getpass
import sys
from datetime import UTC

import click

from authgate.config.loader import parse_duration
from authgate.core.values import AuditEvent, Outcome, RequestMeta


def _services(obj: object):  # type: ignore[no-untyped-def]
    from authgate.composition.root import build_services

    return build_services(obj.settings)  # type: ignore[attr-defined]


def _operator() -> str:
    return f"cli:{getpass.getuser()}"


@click.group("enrol")
def enrol_group() -> None:
    """Enrolment codes: the only way a user without a factor can enrol one."""


@enrol_group.command("issue")
@click.argument("username")
@click.option("--ttl", default="24h", show_default=True, help="Lifetime, e.g. 2h, 24h.")
@click.pass_obj
def enrol_issue(obj: object, username: str, ttl: str) -> None:
    """Issue a single-use enrolment code for USERNAME (shown once)."""
    try:
        lifetime = parse_duration(ttl)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--ttl") from exc
    if lifetime.total_seconds() <= 0 or lifetime.days > 7:
        raise click.BadParameter("between 1 second and 7 days", param_hint="--ttl")
    svc = _services(obj)
    name = username.strip().lower()
    if svc.directory.lookup(name) is None:
        raise click.ClickException(f"no enabled account {name!r} in the directory")
    issued = svc.mfa.enrolment.issue(username=name, issued_by=_operator(), ttl=lifetime,
                                     meta=RequestMeta(client_ip="cli"))
    click.echo(f"enrolment code for {name}: {issued.code}")
    click.echo(f"valid until {issued.expires_at:%Y-%m-%d %H:%M} UTC, once. Hand it over in "
               "person or by phone after checking identity.")


@click.group("keys")
def keys_group() -> None:
    """Encryption keys for secrets at rest (TOTP seeds)."""


@keys_group.command("generate")
@click.option("--kid", default="", help="Key id (default: a date stamp).")
def keys_generate(kid: str) -> None:
    """Print a new key spec for secrets.encryption_keys (put it first to rotate)."""
    from datetime import datetime

    from authgate.core.secretbox import generate_key_spec

    click.echo(generate_key_spec(kid or datetime.now(UTC).strftime("k%Y%m%d")))


@keys_group.command("rotate")
@click.pass_obj
def keys_rotate(obj: object) -> None:
    """Re-encrypt every stored TOTP seed under the first (primary) key."""
    from authgate.core.secretbox import SecretBoxError
    from authgate.credentials.totp import totp_aad

    svc = _services(obj)
    keyring, store = svc.mfa.keyring, svc.mfa.credentials
    rotated = failed = 0
    for sealed in store.all_secrets():
        cred_id, username, token = sealed.id, sealed.username, sealed.secret
        if not keyring.needs_rotation(token):
            continue
        try:
            store.set_secret(cred_id, keyring.rotate(token, associated_data=totp_aad(cred_id,
                                                                                  username)))
            rotated += 1
        except SecretBoxError:
            failed += 1
    svc.audit.record(AuditEvent(event="keys.rotate", outcome=Outcome.SUCCESS if not failed
                                else Outcome.FAILURE, reason="totp_seeds",
                                detail=(("rotated", str(rotated)), ("failed", str(failed)),
                                        ("primary", keyring.primary_kid), ("by", _operator()))))
    click.echo(f"re-encrypted {rotated} secret(s) under {keyring.primary_kid}; {failed} failed")
    sys.exit(1 if failed else 0)
