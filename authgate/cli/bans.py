"""``authgate bans list|lift``: operators see and end brute-force bans; each action audited
(ASVS 7.1.x: administrative actions are logged with who did it and why). The rules are the
admin console's (``admin.bans``)."""
from __future__ import annotations

import getpass
from typing import TYPE_CHECKING

import click

from authgate.admin.bans import lift_ban, list_bans
from authgate.admin.reasons import ReasonRequired, need_reason
from authgate.core.values import RequestMeta
from authgate.regulation import shown_subject

if TYPE_CHECKING:
    from authgate.composition.root import Services

CLI = RequestMeta(client_ip="cli")


def _services(obj: object) -> Services:
    from authgate.composition.root import build_services

    return build_services(obj.settings)  # type: ignore[attr-defined]


def _operator() -> str:
    return f"cli:{getpass.getuser()}"


@click.group("bans")
def bans_group() -> None:
    """Brute-force and password-spray bans."""


@bans_group.command("list")
@click.pass_obj
def bans_list(obj: object) -> None:
    """Show the active bans (users, user@familiar-IP, IPs, sprayed passwords, factors)."""
    services = _services(obj)
    bans = list_bans(registry=services.regulator, audit=services.audit,
                     operator=_operator(), meta=CLI)
    if not bans:
        click.echo("no active bans")
        return
    click.echo(f"{'SUBJECT':<48} {'REASON':<16} {'LEVEL':>5}  UNTIL (UTC)")
    for ban in bans:
        click.echo(f"{shown_subject(ban.subject):<48} {ban.reason:<16} {ban.level:>5}  "
                   f"{ban.until:%Y-%m-%d %H:%M:%S}")


@bans_group.command("lift")
@click.argument("target")
@click.option("--reason", required=True, help="Why (kept in the audit record).")
@click.pass_obj
def bans_lift(obj: object, target: str, reason: str) -> None:
    """Lift the bans on TARGET: a user name (every IP, and second factors) or an IP.

    The AD lockout guard is not lifted: it only keeps the account below AD's threshold and
    ends by itself after AD's observation window."""
    try:
        need_reason(reason)  # the use case's rule, checked before any setting is read
    except ReasonRequired as exc:
        raise click.BadParameter(str(exc), param_hint="--reason") from exc
    services = _services(obj)
    lifted = lift_ban(registry=services.regulator, operator=_operator(), target=target,
                      reason=reason)
    if lifted:
        click.echo("lifted: " + ", ".join(shown_subject(s) for s in lifted))
    else:
        click.echo(f"no active ban on {target} (counters reset)")
