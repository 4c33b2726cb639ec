"""The ``authgate`` command (click, as Flask does). Subcommands live beside this file."""
from __future__ import annotations

import click
from click.core import ParameterSource

from authgate.cli.context import Context

__all__ = ["Context", "main"]


@click.group()
@click.option("--config", "config_path", envvar="AUTHGATE_CONFIG",
              type=click.Path(dir_okay=False), help="YAML configuration file.")
@click.pass_context
def main(ctx: click.Context, config_path: str | None) -> None:
    """authgate: an authentication hardening gateway."""
    given = ctx.get_parameter_source("config_path") is ParameterSource.COMMANDLINE
    ctx.obj = Context(config_path, from_command_line=given)


def _register() -> None:
    from authgate.cli.operate import check_config, db_group, users_group
    from authgate.cli.serve import serve_command

    main.add_command(check_config)
    main.add_command(db_group)
    main.add_command(users_group)
    main.add_command(serve_command)
    from authgate.cli.demo import demo_command
    from authgate.cli.policy import policy_group

    main.add_command(policy_group)
    from authgate.cli.directory import directory_group

    main.add_command(directory_group)
    from authgate.cli.factors import enrol_group
    from authgate.cli.keys import keys_group

    main.add_command(enrol_group)
    main.add_command(keys_group)
    from authgate.cli.audit import audit_group

    main.add_command(audit_group)
    from authgate.cli.bans import bans_group

    main.add_command(bans_group)
    from authgate.cli.sessions import sessions_group

    main.add_command(sessions_group)
    from authgate.cli.backup import backup_command, restore_command

    main.add_command(backup_command)
    main.add_command(restore_command)

    main.add_command(demo_command)


_register()
