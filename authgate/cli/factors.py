"""``authgate enrol``: admin-issued enrolment codes (``authgate keys`` is in ``keys.py``)."""
from __future__ import annotations

import getpass

import click

from authgate.config.loader import parse_duration
from authgate.core.values import RequestMeta


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
