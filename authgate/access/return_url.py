"""Return-URL validation (ASVS 5.1.5): only absolute https URLs on protected domains.

Parsing is done the way a browser would be fooled, and the result is rebuilt from parts,
so ``//evil``, ``https:evil``, ``\\\\evil``, userinfo tricks, control characters and
look-alike suffixes are all refused. Plain http is accepted only for ``localhost`` and only
when explicitly allowed (demo and tests).
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urlsplit, urlunsplit

from authgate.core.errors import RedirectRefused

MAX_LENGTH = 2048
#: a plain DNS name (RFC 1123 labels, no trailing dot) and an optional decimal port: no
#: ``%``-escapes, ``;``, brackets or anything else a browser or proxy might read differently
_NETLOC = re.compile(r"(?P<host>[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
                     r"(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*)(?::(?P<port>[0-9]{1,5}))?")


def host_matches(host: str, patterns: Iterable[str]) -> bool:
    """Exact host, or ``*.suffix`` matching any sub-domain (never the bare suffix)."""
    host = host.lower().rstrip(".")
    for pattern in patterns:
        pattern = pattern.lower()
        if pattern.startswith("*."):
            if host.endswith(pattern[1:]) and len(host) > len(pattern) - 1:
                return True
        elif host == pattern:
            return True
    return False


def validate_return_url(raw: str, *, allowed_domains: Iterable[str],
                        allow_http_localhost: bool = False) -> str:
    """The normalised URL if it is safe to redirect to; raises ``RedirectRefused``."""
    if not raw or len(raw) > MAX_LENGTH:
        raise RedirectRefused("empty or overlong return URL")
    if any(ord(c) < 0x21 or ord(c) == 0x7F or c == "\\" for c in raw) or not raw.isascii():
        raise RedirectRefused("control character, space, backslash or non-ASCII")
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError as exc:
        raise RedirectRefused("unparseable return URL") from exc
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise RedirectRefused("userinfo in return URL")
    if not raw.lower().startswith(f"{parts.scheme}://") or not parts.netloc:
        raise RedirectRefused("not an absolute URL")
    host = _plain_host(parts.netloc.lower(), port)
    if parts.scheme == "http":
        if not (allow_http_localhost and host == "localhost"):
            raise RedirectRefused("plain http return URL")
    elif parts.scheme != "https":
        raise RedirectRefused("scheme not allowed")
    if not host_matches(host, allowed_domains):
        raise RedirectRefused("host not protected by authgate")
    netloc = host if port is None else f"{host}:{port}"
    return urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))


def _plain_host(netloc: str, port: int | None) -> str:
    """The host of ``netloc`` if it is a plain DNS name with, at most, a port in 1-65535
    (RFC 3986 3.2.2-3.2.3 allow more; nothing authgate protects needs it)."""
    match = _NETLOC.fullmatch(netloc)
    if match is None or len(match["host"]) > 253:
        raise RedirectRefused("host is not a plain DNS name")
    if match["port"] is not None and not (port is not None and 1 <= port <= 65535):
        raise RedirectRefused("port outside 1-65535")
    return match["host"]
