"""Operator commands: configuration check, database migration, users file."""
from __future__ import annotations

import getpass
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from authgate.config import Settings, load_settings
from authgate.core.errors import ConfigError

if TYPE_CHECKING:  # the package imports this module while it registers the commands
    from authgate.cli.context import Context
    from authgate.directory.file import FileDirectory
    from authgate.policy.live import PolicyRuntime


@click.command("check-config")
@click.pass_obj
def check_config(obj: Context) -> None:
    """Validate the configuration and policies; print every problem; exit 1 if any."""
    try:
        settings = load_settings(obj.config_path)
    except ConfigError as exc:
        for problem in exc.problems:
            click.echo(f"error: {problem}")
        click.echo(f"{len(exc.problems)} problem(s) found")
        sys.exit(1)
    from authgate.core.errors import PolicyError
    from authgate.policy.live import PolicyRuntime

    try:
        runtime = PolicyRuntime(Path(settings.policy.path),
                                require_approval=settings.policy.require_approval)
    except PolicyError as exc:
        for problem in exc.problems:
            click.echo(f"error: policy: {problem}")
        sys.exit(1)
    for warning in runtime.current.warnings:
        click.echo(f"warning: policy: {warning}")
    if not _lockout_margin_ok(settings, runtime) or not _witness_ok(settings):
        sys.exit(1)
    click.echo(f"configuration OK (mode {settings.mode}, policy {runtime.current.digest[:16]})")


def _witness_ok(settings: Settings) -> bool:
    """audit.witness writable, and not beside the database (docs/audit.md, Witness)."""
    from authgate.config.audit import witness_findings

    findings = witness_findings(settings.audit, settings.storage.url)
    for severity, message in findings:
        click.echo(f"{severity}: {message}")
    return all(severity != "error" for severity, _ in findings)


def _lockout_margin_ok(settings: Settings, runtime: PolicyRuntime) -> bool:
    """authgate must throttle before Active Directory locks the account (issue 7).

    Reading AD's lockout policy needs the service bind, which passes the shared circuit
    (issue 15): a wrong service password costs AD one failure in all, however often
    check-config runs, and it fails the check with what AD answered."""
    from authgate.cli.directory import configured_directory
    from authgate.composition.directory import ad_roles
    from authgate.core.errors import AuthgateError
    from authgate.directory.ldap_circuit import ServiceBindPending, ServiceBindRefused
    from authgate.regulation.adpolicy import lockout_margin

    try:
        directory = configured_directory(settings)
    except click.UsageError as exc:  # e.g. a CA file that is not PEM: no traceback
        click.echo(f"error: directory: {exc.message}")
        return False
    try:
        margin = lockout_margin(ad_roles(directory).lockout_policy,
                                runtime.current.settings.regulation)
    except (ServiceBindRefused, ServiceBindPending) as exc:
        click.echo(f"error: directory: service account: {exc}")
        return False
    except AuthgateError as exc:
        click.echo(f"warning: directory: not verified, AD lockout policy not read: {exc}")
        return True
    if margin is None:
        return True
    click.echo("directory: service bind accepted (one bind, through the service-bind circuit)")
    for message in margin.messages:
        click.echo(f"{margin.severity}: regulation: {message}")
    return bool(margin.ok)


@click.group("db")
def db_group() -> None:
    """Database schema."""


@db_group.command("upgrade")
@click.option("--revision", default="head", show_default=True)
@click.pass_obj
def db_upgrade(obj: Context, revision: str) -> None:
    """Apply the Alembic migrations to the configured database."""
    from authgate.storage.engine import migrate

    migrate(obj.settings.storage.url, revision)
    click.echo(f"database at {revision}")


@click.group("users")
def users_group() -> None:
    """Manage the file directory (embedded default and break-glass accounts)."""


def _file_directory(obj: Context) -> FileDirectory:
    from authgate.directory.file import FileDirectory

    return FileDirectory(Path(obj.settings.directory.file.path))


def _read_password(password_stdin: bool) -> str:
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("New password: ")
        if password != getpass.getpass("Repeat it: "):
            raise click.ClickException("the passwords differ")
    if len(password) < 12:
        raise click.ClickException("a password needs at least 12 characters")
    return password


@users_group.command("add")
@click.argument("username")
@click.option("--name", "display_name", default="")
@click.option("--email", default="")
@click.option("--group", "groups", multiple=True, help="Repeat for several groups.")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin.")
@click.pass_obj
def users_add(obj: Context, username: str, display_name: str, email: str,
              groups: tuple[str, ...], password_stdin: bool) -> None:
    """Add a user."""
    try:
        _file_directory(obj).add_user(username, _read_password(password_stdin),
                                      display_name=display_name, email=email,
                                      groups=list(groups))
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"added {username.strip().lower()}")


@users_group.command("set-password")
@click.argument("username")
@click.option("--password-stdin", is_flag=True)
@click.pass_obj
def users_set_password(obj: Context, username: str, password_stdin: bool) -> None:
    """Set a user's password."""
    try:
        _file_directory(obj).set_password(username, _read_password(password_stdin))
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo("password set")


@users_group.command("disable")
@click.argument("username")
@click.option("--enable", is_flag=True, help="Enable the account again.")
@click.pass_obj
def users_disable(obj: Context, username: str, enable: bool) -> None:
    """Disable (or with --enable, re-enable) a user."""
    try:
        _file_directory(obj).set_disabled(username, not enable)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"{username} {'enabled' if enable else 'disabled'}")


@users_group.command("list")
@click.pass_obj
def users_list(obj: Context) -> None:
    """List users with their groups and state."""
    for identity, disabled in _file_directory(obj).list_users():
        state = "disabled" if disabled else "active"
        click.echo(f"{identity.username:20} {state:8} {','.join(sorted(identity.groups))}")
