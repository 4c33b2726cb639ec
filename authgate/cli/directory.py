"""``authgate directory check|lookup``: see the directory as authgate sees it (issue 3.5).

Where the directory comes from, first match wins: ``--url`` options (or ``AUTHGATE_LDAP_*``
environment variables) build an ``LdapDirectory``; else the loaded configuration
(``ctx.obj.settings``). The bind password is read from a file or the
environment only: a command-line value would show in ``ps``.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from authgate.config import Settings
from authgate.config.settings import LdapDirectorySettings, Secret
from authgate.core.errors import AuthgateError, DirectoryUnavailable
from authgate.directory import Directory, roles_of
from authgate.directory.ldap import LdapDirectory

Builder = Callable[[LdapDirectorySettings], Directory]


def _ldap_options(f: Callable[..., Any]) -> Callable[..., Any]:
    opts = [
        click.option("--url", "urls", multiple=True, envvar="AUTHGATE_LDAP_URL",
                     help="DC URL, repeatable (env: space-separated)."),
        click.option("--base-dn", envvar="AUTHGATE_LDAP_BASE_DN", default=""),
        click.option("--bind-dn", envvar="AUTHGATE_LDAP_BIND_DN", default=""),
        click.option("--bind-password-file", envvar="AUTHGATE_LDAP_BIND_PASSWORD_FILE",
                     type=click.Path(dir_okay=False, path_type=Path),
                     help="File holding the service password (or $AUTHGATE_LDAP_BIND_PASSWORD)."),
        click.option("--ca-file", envvar="AUTHGATE_LDAP_CA_FILE", default=""),
        click.option("--start-tls/--no-start-tls", envvar="AUTHGATE_LDAP_START_TLS", default=False),
        click.option("--allow-plain", is_flag=True, envvar="AUTHGATE_LDAP_ALLOW_PLAIN"),
        click.option("--min-tls", envvar="AUTHGATE_LDAP_MIN_TLS", default="TLSv1.2"),
        click.option("--login-attribute", envvar="AUTHGATE_LDAP_LOGIN_ATTRIBUTE",
                     default="sAMAccountName"),
        click.option("--upn-suffix", envvar="AUTHGATE_LDAP_UPN_SUFFIX", default=""),
        click.option("--netbios-domain", envvar="AUTHGATE_LDAP_NETBIOS_DOMAIN", default=""),
        click.option("--group-name-attribute", envvar="AUTHGATE_LDAP_GROUP_NAME_ATTRIBUTE",
                     default="cn"),
        click.option("--user-base-dn", envvar="AUTHGATE_LDAP_USER_BASE_DN", default=""),
        click.option("--group-base-dn", envvar="AUTHGATE_LDAP_GROUP_BASE_DN", default=""),
        click.option("--connect-timeout", envvar="AUTHGATE_LDAP_CONNECT_TIMEOUT", type=float,
                     default=1.0),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


def _settings_from(options: dict[str, Any]) -> LdapDirectorySettings:
    opts = dict(options)
    password_file: Path | None = opts.pop("bind_password_file")
    if password_file is not None:
        secret = Secret(password_file.read_text(encoding="utf-8").strip(),
                        source=str(password_file.resolve()))
    else:
        secret = Secret(os.environ.get("AUTHGATE_LDAP_BIND_PASSWORD", ""))
    opts["urls"] = tuple(opts["urls"])
    return LdapDirectorySettings(bind_password=secret, **opts)


def _resolve(ctx: click.Context, options: dict[str, Any], build: Builder) -> Directory:
    if options["urls"]:
        try:
            return build(_settings_from(options))
        except (ValueError, OSError) as exc:
            raise click.UsageError(str(exc)) from exc
    if ctx.obj is None:  # the group used on its own, outside ``authgate``
        raise click.UsageError(
            "no directory: give --url/--base-dn/... or AUTHGATE_LDAP_* variables")
    return configured_directory(ctx.obj.settings)


def configured_directory(settings: Settings) -> Directory:
    """The configured directory, its service binds through the circuit shared in the
    database and audited, as the gateway's own (issue 15)."""
    from authgate.composition.audit import build_audit_log
    from authgate.composition.directory import build_directory
    from authgate.core.clock import SystemClock
    from authgate.storage.engine import make_engine

    try:
        if settings.directory.backend != "ldap":
            return build_directory(settings)
        engine = make_engine(settings.storage.url)
        audit = build_audit_log(settings, engine, SystemClock())
        return build_directory(settings, engine=engine, audit=audit)
    except (ValueError, OSError, AuthgateError) as exc:
        raise click.UsageError(str(exc)) from exc


def make_directory_group(build: Builder = lambda s: LdapDirectory(settings=s)) -> click.Group:
    """The ``directory`` command group; ``build`` turns LDAP settings into a directory."""

    @click.group("directory")
    @_ldap_options
    @click.pass_context
    def group(ctx: click.Context, /, **options: Any) -> None:
        """Check the user directory and look users up, as authgate sees them."""
        ctx.meta["authgate.directory"] = lambda: _resolve(ctx, options, build)

    @group.command("check")
    @click.pass_context
    def check(ctx: click.Context) -> None:
        """Service bind, TLS details, which DC answered, timings. Exit 1 if unusable."""
        from authgate.composition.directory import active_directory

        # break-glass: check AD itself
        directory = active_directory(ctx.meta["authgate.directory"]())
        if isinstance(directory, LdapDirectory):
            ok = _print_diagnosis(directory)
        else:
            ok = _plain_check(directory)
        ctx.exit(0 if ok else 1)

    @group.command("lookup")
    @click.argument("user")
    @click.pass_context
    def lookup(ctx: click.Context, user: str) -> None:
        """Identity, account state and transitive groups of USER. Exit 1 if not found."""
        directory = ctx.meta["authgate.directory"]()
        try:
            found = _print_lookup(directory, user)
        except DirectoryUnavailable as exc:
            click.echo(f"directory unavailable: {exc}", err=True)
            ctx.exit(2)
        ctx.exit(0 if found else 1)

    group.add_command(reset_service_bind)
    return group


@click.command("reset-service-bind")
@click.pass_context
def reset_service_bind(ctx: click.Context) -> None:
    """Forget AD's refusal of the service password (audited), e.g. after an AD admin
    fixed the account; the next service bind tries the configured password once."""
    from authgate.composition.directory import active_directory

    directory = active_directory(ctx.meta["authgate.directory"]())
    if not isinstance(directory, LdapDirectory):
        raise click.UsageError("the directory is not Active Directory")
    try:
        removed = directory.reset_service_bind()
    except AuthgateError as exc:
        raise click.ClickException(f"not reset: {exc}") from exc
    click.echo(f"service-bind circuit reset for {directory.settings.bind_dn} "
               f"({removed} record(s) removed)")


def _print_diagnosis(directory: LdapDirectory) -> bool:
    """Each DC's answer; a wrong service password is sent to AD at most once, ever."""
    try:
        diagnosis = directory.diagnose()
    except AuthgateError as exc:  # e.g. the circuit's table is missing: `authgate db upgrade`
        click.echo(f"FAIL  service-bind circuit unusable: {exc}", err=True)
        return False
    click.echo(f"service account: {diagnosis.bind_dn}")
    for e in diagnosis.endpoints:
        if e.ok:
            click.echo(f"ok    {e.url}  dc={e.dc_host or '?'}  {e.tls_version} {e.cipher}  "
                       f"service bind accepted; connect {e.connect_ms} ms, bind {e.bind_ms} ms, "
                       f"search {e.search_ms} ms")
        else:
            click.echo(f"FAIL  {e.url}  {e.error}  (after {e.connect_ms} ms)")
    if not diagnosis.ok:
        click.echo("result: no domain controller can serve logins", err=True)
        return False
    threshold, window = directory.domain_lockout_policy()
    click.echo(f"logins use: {diagnosis.answered_by}")
    click.echo(f"domain lockout: threshold {threshold}, observation window {window}")
    return True


def _plain_check(directory: Directory) -> bool:
    try:
        directory.check()
    except DirectoryUnavailable as exc:
        click.echo(f"FAIL  {directory.name}: {exc}", err=True)
        return False
    click.echo(f"ok    {directory.name}")
    return True


def _print_lookup(directory: Directory, user: str) -> bool:
    source = roles_of(directory).account_status
    if source is not None:
        status = source.account_status(user)
        identity = status.identity if status else None
        extra = [("state", status.state.value)] if status else []
        extra += [("dn", status.dn)] if status and status.dn else []
    else:
        identity, extra = directory.lookup(user), []
    if identity is None:
        click.echo(f"no such user (or not usable): {user}", err=True)
        return False
    rows = [("user", identity.username), *extra, ("display name", identity.display_name),
            ("email", identity.email), ("stable id", identity.stable_id),
            ("source", identity.source), ("groups", ", ".join(sorted(identity.groups)) or "-")]
    for label, value in rows:
        click.echo(f"{label + ':':14}{value}")
    return True


directory_group = make_directory_group()
