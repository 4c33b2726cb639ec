"""What every subcommand receives as ``ctx.obj``."""
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
