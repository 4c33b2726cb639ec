"""Finding people in Active Directory for the admin console (issue 17 item 8).

One subtree search through the service account (never a user's bind):
``(|(sAMAccountName=prefix*)(displayName=*text*))`` under the user base, the typed text
escaped as RFC 4515 3 demands (``*``, ``(``, ``)``, ``\\`` and NUL become ``\\2a`` ...), so a
typed ``*`` or ``)`` is a character to look for, never a wildcard or a filter of its own.
Control characters never reach a filter (as in ``parse_login_name``): Samba ends a value at
an escaped NUL (``\\00``), so ``a\\x00`` would search for ``a*`` (measured, tests/ad).
A size limit keeps one search small (RFC 4511 4.5.1: sizeLimit; AD answers
``sizeLimitExceeded`` with the entries it had, which we keep).
"""
from __future__ import annotations

from typing import Any

from ldap3 import SUBTREE, Connection
from ldap3.utils.conv import escape_filter_chars

from authgate.config.settings import LdapDirectorySettings
from authgate.core.errors import DirectoryUnavailable
from authgate.directory.roles import UserMatch

#: what the result list shows, no more (groups would cost a search per person)
SEARCH_ATTRIBUTES = ["sAMAccountName", "displayName", "mail", "userAccountControl"]
#: the longest text searched for (a display name is at most 256 characters in AD)
MAX_TEXT = 64
_ACCOUNTDISABLE = 0x2  # userAccountControl bit (MS-ADTS 2.2.16)
_SIZE_LIMIT_EXCEEDED = 4


def search_filter(text: str) -> str:
    """The filter for ``text``: a login-name prefix or a display-name part, people only."""
    value = escape_filter_chars(text.strip()[:MAX_TEXT])
    return (f"(&(objectCategory=person)(objectClass=user)"
            f"(|(sAMAccountName={value}*)(displayName=*{value}*)))")


def search_users(run: Any, settings: LdapDirectorySettings, text: str, *,
                 limit: int) -> list[UserMatch]:
    """At most ``limit + 1`` matches, sorted by login name; ``run`` is the service pool's
    ``run`` (the service account's connection, its circuit and failover)."""
    if not text.strip() or any(ord(c) < 32 or ord(c) == 127 for c in text):
        return []  # no name holds a control character (see the module docstring)
    flt = search_filter(text)

    def search(conn: Connection) -> list[UserMatch]:
        conn.search(settings.user_base_dn or settings.base_dn, flt, SUBTREE,
                    attributes=SEARCH_ATTRIBUTES, size_limit=limit + 1)
        code = (conn.result or {}).get("result")
        if code not in (0, _SIZE_LIMIT_EXCEEDED):
            raise DirectoryUnavailable(f"user search: {(conn.result or {}).get('description')}")
        return [match for item in conn.response or []
                if item.get("type") == "searchResEntry"
                and (match := _match(item.get("attributes") or {})) is not None]
    found: list[UserMatch] = run(search)
    return sorted(found, key=lambda m: m.username)[:limit + 1]


def _match(attrs: dict[str, Any]) -> UserMatch | None:
    sam = _first(attrs, "sAMAccountName")
    if not sam:
        return None
    try:
        control = int(_first(attrs, "userAccountControl") or 0)
    except (TypeError, ValueError):
        control = 0
    return UserMatch(username=str(sam).lower(),
                     display_name=str(_first(attrs, "displayName") or sam),
                     email=str(_first(attrs, "mail") or ""),
                     disabled=bool(control & _ACCOUNTDISABLE))


def _first(attrs: dict[str, Any], name: str) -> Any:
    value = attrs.get(name)
    if isinstance(value, list):
        return value[0] if value else None
    return value
