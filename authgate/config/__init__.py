"""Configuration: one YAML file plus ``AUTHGATE_*`` environment overrides, loaded once,
strictly, into frozen dataclasses. Every problem is reported with its path."""
from __future__ import annotations

from authgate.config.loader import load_settings, settings_from_mapping
from authgate.config.settings import Secret, Settings

__all__ = ["Secret", "Settings", "load_settings", "settings_from_mapping"]
