"""Checking a reload before ``authgate serve`` passes SIGHUP on to its gunicorn masters.

A SIGHUP to a gunicorn master starts new workers from the files on disk; with a broken
policy set or configuration they fail to boot and the master stops: the whole gateway goes
down (issue #14 finding 5: "keep serving the last good state, report loudly"). A worker that
gets SIGHUP keeps its last good policy set by itself (``policy.live``); this guard gives the
masters the same rule: the supervisor loads the configuration and the policy set (approved,
when approval is required) first, and passes the signal on only when both load.
"""
from __future__ import annotations

from pathlib import Path

from authgate.config import load_settings
from authgate.core.errors import ConfigError, PolicyError
from authgate.policy.files import load_policy_set, require_approved


def reload_problems(config_path: str | None) -> list[str]:
    """Why new workers would fail to boot now; empty when a reload is safe."""
    try:
        settings = load_settings(config_path)
        directory = Path(settings.policy.path)
        policy_set = load_policy_set(directory)
        if settings.policy.require_approval:
            require_approved(policy_set, directory)
    except (ConfigError, PolicyError) as exc:
        return list(exc.problems) or [str(exc)]
    except OSError as exc:
        return [f"cannot read a file the gateway needs: {exc}"]
    return []
