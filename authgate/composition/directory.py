"""Builds the user directory from settings: the one place that picks the directory backend
and finds, once, which optional roles it plays (``authgate.directory.roles``)."""
from __future__ import annotations

from pathlib import Path

from authgate.config import Settings
from authgate.directory import Directory, DirectoryRoles, roles_of
from authgate.directory.break_glass import BreakGlassDirectory
from authgate.directory.file import FileDirectory


def build_directory(settings: Settings) -> Directory:
    """The configured directory; with ``break_glass_file``, the break-glass file beside it.
    Raises ``ValueError`` for LDAP settings ``check-config`` would have reported."""
    primary = _build_primary(settings)
    if settings.directory.break_glass_file:
        local = FileDirectory(Path(settings.directory.break_glass_file))
        return BreakGlassDirectory(primary=primary, local=local,
                                   primary_roles=roles_of(primary))
    return primary


def _build_primary(settings: Settings) -> Directory:
    if settings.directory.backend == "ldap":
        from authgate.directory.ldap import LdapDirectory  # ldap3 only when AD is used

        return LdapDirectory(settings=settings.directory.ldap)
    return FileDirectory(Path(settings.directory.file.path))


def active_directory(directory: Directory) -> Directory:
    """The directory that binds to AD: a break-glass composite exposes it as ``primary``.
    Its lockout policy and login-name forms govern every AD account."""
    return directory.primary if isinstance(directory, BreakGlassDirectory) else directory


def ad_roles(directory: Directory) -> DirectoryRoles:
    """The roles of the directory behind ``directory`` that describe AD itself."""
    return roles_of(active_directory(directory))
