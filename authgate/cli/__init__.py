"""The ``authgate`` command (click, as Flask does). Subcommands live beside this file."""
from __future__ import annotations

import sys

import click

from authgate.config import Settings, load_settings
from authgate.core.errors import ConfigError


class Context:
    """Lazily loaded settings for subcommands; ``--config`` or ``$AUTHGATE_CONFIG``."""

    def __init__(self, config_path: str | None) -> None:
        self.config_path = config_path
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            try:
                self._settings = load_settings(self.config_path)
            except ConfigError as exc:
                for problem in exc.problems:
                    click.echo(f"config error: {problem}", err=True)
                sys.exit(2)
        return self._settings


@click.group()
@click.option("--config", "config_path", envvar="AUTHGATE_CONFIG",
              type=click.Path(dir_okay=False), help="YAML configuration file.")
@click.pass_context
def main(ctx: click.Context, config_path: str | None) -> None:
    """authgate: an authentication hardening gateway."""
    ctx.obj = Context(config_path)


def _register() -> None:
    from authgate.cli.operate import check_config, db_group, serve_command, users_group

    main.add_command(check_config)
    main.add_command(db_group)
    main.add_command(users_group)
    main.add_command(serve_command)
    from authgate.cli.demo import demo_command
    from authgate.cli.policy import policy_group

    main.add_command(policy_group)
    from authgate.cli.directory import directory_group

    main.add_command(directory_group)
    from authgate.cli.factors import enrol_group, keys_group

    main.add_command(enrol_group)
    main.add_command(keys_group)
    from authgate.cli.audit import audit_group

    main.add_command(audit_group)
    from authgate.cli.bans import bans_group

    main.add_command(bans_group)

    main.add_command(demo_command)


_register()
