"""The rules an ``LdapDirectorySettings`` must meet before authgate talks to AD.

One list of rules for both places that need it: the config loader reports each broken rule
with its path (``directory.ldap.ca_file: ...``, so ``authgate check-config`` prints it and
exits 1), and ``LdapDirectory`` refuses to be built from settings that break any rule (fail
closed for settings made in code, e.g. ``authgate directory --url ...``).
"""
from __future__ import annotations

import re
from urllib.parse import urlsplit

from authgate.config.settings import LdapDirectorySettings

TLS_VERSIONS = ("TLSv1.2", "TLSv1.3")
LOGIN_ATTRIBUTES = ("sAMAccountName", "userPrincipalName")
_ATTRIBUTE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]*$")  # RFC 4512 descr


def ldap_problems(s: LdapDirectorySettings) -> list[tuple[str, str]]:
    """Every broken rule as (field, message); empty when the settings are usable."""
    problems = [(f"urls[{i}]", p) for i, url in enumerate(s.urls)
                for p in _url_problems(url, s)]
    if not s.urls:
        problems.append(("urls", "at least one domain controller URL is required"))
    problems += [(name, "required") for name, value in (("base_dn", s.base_dn),
                                                         ("bind_dn", s.bind_dn)) if not value]
    if s.bind_password is None or not s.bind_password.reveal():
        problems.append(("bind_password", "empty (an empty simple bind is anonymous, "
                                          "RFC 4513 5.1.2)"))
    if s.min_tls not in TLS_VERSIONS:
        problems.append(("min_tls", f"must be one of {list(TLS_VERSIONS)}"))
    if s.login_attribute not in LOGIN_ATTRIBUTES:
        problems.append(("login_attribute", f"must be one of {list(LOGIN_ATTRIBUTES)}"))
    if s.login_attribute == "userPrincipalName" and not s.upn_suffix:
        problems.append(("upn_suffix", "required when login_attribute is userPrincipalName"))
    if not _ATTRIBUTE_NAME.match(s.group_name_attribute):
        problems.append(("group_name_attribute", "not an attribute name"))
    problems += [(name, "must be positive")
                 for name, seconds in (("connect_timeout", s.connect_timeout),
                                       ("receive_timeout", s.receive_timeout)) if seconds <= 0]
    if s.pool_size < 1:
        problems.append(("pool_size", "must be at least 1"))
    if any(not plain_url(u, start_tls=s.start_tls) for u in s.urls) and not s.ca_file:
        problems.append(("ca_file", "required: the DC certificate is verified against it"))
    return problems


def plain_url(url: str, *, start_tls: bool) -> bool:
    """A URL whose traffic, passwords included, would not be encrypted."""
    return urlsplit(url).scheme.lower() == "ldap" and not start_tls


def _url_problems(url: str, s: LdapDirectorySettings) -> list[str]:
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 - a port that is not a number raises here
    except ValueError:
        return [f"{url!r}: the port is not a number"]
    if parts.scheme.lower() not in ("ldap", "ldaps") or not parts.hostname:
        return [f"{url!r}: expected ldaps://host[:port] or ldap://host[:port]"]
    if parts.path not in ("", "/") or parts.query:
        return [f"{url!r}: put the base DN in base_dn, not in the URL"]
    if plain_url(url, start_tls=s.start_tls) and not s.allow_plain:
        return [f"{url!r}: plain LDAP would send passwords in clear text; use ldaps:// or "
                "start_tls (allow_plain exists for labs only)"]
    return []


def check_ldap_settings(s: LdapDirectorySettings) -> None:
    """Raise ``ValueError`` naming every broken rule (nothing is connected before this)."""
    problems = ldap_problems(s)
    if problems:
        raise ValueError("invalid LDAP settings: "
                         + "; ".join(f"{name}: {message}" for name, message in problems))
