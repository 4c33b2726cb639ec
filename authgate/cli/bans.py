"""``authgate bans list|lift``: operators see and end brute-force bans; each action audited
(ASVS 7.1.x: administrative actions are logged with who did it and why)."""
from __future__ import annotations

import getpass

import click

from authgate.core.values import AuditEvent, Outcome


def _regulator(obj: object):  # type: ignore[no-untyped-def]
    from authgate.composition.root import build_services

    services = build_services(obj.settings)  # type: ignore[attr-defined]
    regulator = services.regulator
    if not hasattr(regulator, "active_bans"):
        raise click.ClickException("brute-force regulation is not enabled")
    return services, regulator


def _operator() -> str:
    return f"cli:{getpass.getuser()}"


def _shown(subject: str) -> str:
    return "password (sprayed)" if subject.startswith("pw:") else subject


@click.group("bans")
def bans_group() -> None:
    """Brute-force and password-spray bans."""


@bans_group.command("list")
@click.pass_obj
def bans_list(obj: object) -> None:
    """Show the active bans (users, user@familiar-IP, IPs, sprayed passwords, factors)."""
    services, regulator = _regulator(obj)
    bans = regulator.active_bans()
    services.audit.record(AuditEvent(event="ban.list", outcome=Outcome.INFO,
                                     reason="operator_list", username=_operator(),
                                     client_ip="cli", detail=(("count", str(len(bans))),)))
    if not bans:
        click.echo("no active bans")
        return
    click.echo(f"{'SUBJECT':<48} {'REASON':<16} {'LEVEL':>5}  UNTIL (UTC)")
    for ban in bans:
        click.echo(f"{_shown(ban.subject):<48} {ban.reason:<16} {ban.level:>5}  "
                   f"{ban.until:%Y-%m-%d %H:%M:%S}")


@bans_group.command("lift")
@click.argument("target")
@click.option("--reason", required=True, help="Why (kept in the audit record).")
@click.pass_obj
def bans_lift(obj: object, target: str, reason: str) -> None:
    """Lift the bans on TARGET: a user name (every IP, and second factors) or an IP.

    The AD lockout guard is not lifted: it only keeps the account below AD's threshold and
    ends by itself after AD's observation window."""
    if not reason.strip():
        raise click.BadParameter("give a reason", param_hint="--reason")
    _services, regulator = _regulator(obj)
    lifted = regulator.lift(target, operator=_operator(), reason=reason.strip())
    if lifted:
        click.echo("lifted: " + ", ".join(_shown(s) for s in lifted))
    else:
        click.echo(f"no active ban on {target} (counters reset)")
