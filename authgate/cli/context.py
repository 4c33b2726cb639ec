"""What every subcommand receives as ``ctx.obj``."""
from __future__ import annotations

import os
import sys

import click

from authgate.config import Settings, load_settings
from authgate.core.errors import ConfigError


class Context:
    """Lazily loaded settings for subcommands; ``--config`` or ``$AUTHGATE_CONFIG``.

    ``config_path`` is absolute: commands that start other processes (``serve``) hand it on,
    and those may run from another directory (issue 15 item 3)."""

    def __init__(self, config_path: str | None, *, from_command_line: bool = False) -> None:
        self.config_path = os.path.abspath(config_path) if config_path else None
        self.from_command_line = from_command_line
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
