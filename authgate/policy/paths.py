"""Which request paths the policy may judge: only those every back end serves as written.

One rule (issue #14): the path the policy judges must be the path the application serves,
for *every* back end. Back ends disagree on exactly the forms refused here: Tomcat and Jetty
strip ``;param`` path parameters (``/admin;x/`` is served as ``/admin/``, a Python app serves
it literally), resolve ``.``/``..`` segments (``..;`` included) and merge ``//``, while a
WSGI app sees them as written; some decoders accept overlong UTF-8 (``%c0%af`` as ``/``) or
decode twice. A path in canonical form (RFC 3986 3.3 ``pchar`` only, no ``;``, no empty or
dot segment, escapes that decode once to UTF-8 text without delimiters or controls) reads
the same to all of them, so anything else is refused before any rule (ASVS 4.1.3,
CWE-22, CWE-436 "interpretation conflict"). Stripping parameters instead would mis-judge
one back end or the other.
"""

from __future__ import annotations

import re
from urllib.parse import unquote_to_bytes

#: percent-encoded unreserved characters (RFC 3986 2.3): decoding them changes nothing
UNRESERVED_ESCAPE = re.compile(r"%(2[dDeE]|3[0-9]|[46][1-9a-fA-F]|[57][0-9aA]|5[fF]|7[eE])")
_SLASHES = re.compile(r"/{2,}")
#: RFC 3986 3.3 path characters plus "/" and "%", without ";" (a servlet path parameter)
_PCHARS = re.compile(r"/[A-Za-z0-9\-._~!$&'()*+,=:@/%]*")
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
#: escapes that decode to a control character, "/", "\", ";" or "%" (double encoding)
_HIDING_ESCAPE = re.compile(r"%(?:[01][0-9a-f]|7f|2f|5c|3b|25)", re.IGNORECASE)
_DOT_SEGMENT = re.compile(r"/\.{1,2}(?:/|$)")


def path_problem(path: str) -> str | None:
    """What could make some back end serve ``path`` as another path; None if nothing can.

    ``path`` is the request target's path as the client sent it (no query, no fragment).
    """
    if not _PCHARS.fullmatch(path):
        return "a character outside RFC 3986 path characters (';', '\\', space, non-ASCII)"
    if "%" in path:
        if _BAD_ESCAPE.search(path) or _HIDING_ESCAPE.search(path):
            return "an escape that hides a delimiter, a control character or another escape"
        try:
            unquote_to_bytes(path).decode("utf-8")  # strict: overlong forms are refused
        except UnicodeDecodeError:
            return "escapes that do not decode to UTF-8 (overlong forms included)"
        path = UNRESERVED_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), path)
    if "//" in path or _DOT_SEGMENT.search(path):
        return "an empty or dot segment ('//', '/./', '/../', encoded or not)"
    return None


def normalize_path(path: str) -> str:
    """The path as a back end will route it, so ``/public/../admin`` cannot borrow the
    bypass of ``/public/`` (ASVS 4.1.3): decode percent-encoded unreserved characters
    (RFC 3986 2.3), treat backslashes as slashes (IIS), merge slashes, remove dot segments
    (RFC 3986 5.2.4). Encoded slashes (``%2F``) stay encoded. For a path that
    :func:`path_problem` accepts, only the first step changes anything."""
    path = UNRESERVED_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), path).replace("\\", "/")
    path = _SLASHES.sub("/", path if path.startswith("/") else "/" + path)
    if "/." not in path:
        return path
    out: list[str] = []
    segments = path.split("/")[1:]
    for segment in segments:
        if segment == "..":
            if out:
                out.pop()
        elif segment != ".":
            out.append(segment)
    trailing = "/" if segments[-1] in (".", "..") else ""
    return "/" + "/".join(out) + (trailing if out else "")
