"""``authgate sessions end-all``: the admin console's "end every session" from a shell, for a
suspected compromise when no admin can (or should) sign in (docs/runbooks.md). Rotating the
session key does not do this: a session id is a random token the database knows, not a value
the key signs, so sessions survive any key rotation by design (docs/deployment.md)."""
from __future__ import annotations

import getpass

import click

from authgate.admin.reasons import ReasonRequired, need_reason
from authgate.core.values import RequestMeta


@click.group("sessions")
def sessions_group() -> None:
    """Signed-in sessions."""


@sessions_group.command("end-all")
@click.option("--reason", required=True, help="Why, e.g. the incident number (audited).")
@click.pass_obj
def sessions_end_all(obj: object, reason: str) -> None:
    """End every session of every user now (audited, reason suspected_compromise)."""
    from authgate.composition.root import build_services

    try:
        need_reason(reason)
    except ReasonRequired as exc:
        raise click.BadParameter(str(exc), param_hint="--reason") from exc
    services = build_services(obj.settings)  # type: ignore[attr-defined]
    ended = services.admin.end_all_sessions(admin=f"cli:{getpass.getuser()}", reason=reason,
                                            meta=RequestMeta(client_ip="cli"))
    click.echo(f"ended {ended} session(s); everybody signs in again")
