"""A sample protected application: shows what the gateway told it about the user.

Used by the demo and, under gunicorn behind real nginx, by the integration tests.
"""
from __future__ import annotations

import html
import json
from collections.abc import Callable, Iterable
from typing import Any

_IDENTITY = ("Remote-User", "Remote-Groups", "Remote-Name", "Remote-Email")
StartResponse = Callable[..., Any]


def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """Plain WSGI: ``/whoami.json`` answers JSON (for tests), everything else HTML."""
    seen = {h: _header(environ, h) for h in _IDENTITY}
    path = _text(environ.get("PATH_INFO", "/"))
    query = environ.get("QUERY_STRING", "")
    if path.endswith("/whoami.json"):
        # host and path as served, so tests can compare them with the audited decision
        body = json.dumps({"app": "sample", "host": _host(environ), "path": path,
                           "query": query, "method": environ.get("REQUEST_METHOD"),
                           "headers": seen}).encode()
        start_response("200 OK", [("Content-Type", "application/json"),
                                  ("Content-Length", str(len(body)))])
        return [body]
    rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v or '(none)')}</td></tr>"
                   for k, v in seen.items())
    body = (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        "<title>Sample city application</title></head><body style='font-family:sans-serif;"
        "max-width:40rem;margin:2rem auto'><h1>Sample city application</h1>"
        "<p>You reached a protected application. authgate told it who you are:</p>"
        f"<table>{rows}</table><p>Path: <code>{html.escape(path)}</code>"
        f"{'?' + html.escape(query) if query else ''}</p>"
        "<p><a href='/public/'>Public page</a> · <a href='/forbidden/'>Forbidden page</a></p>"
        "</body></html>"
    ).encode()
    start_response("200 OK", [("Content-Type", "text/html; charset=utf-8"),
                              ("Content-Length", str(len(body)))])
    return [body]


def _header(environ: dict[str, Any], name: str) -> str:
    return _text(environ.get("HTTP_" + name.upper().replace("-", "_"), ""))


def _text(raw: object) -> str:
    """WSGI strings are bytes carried as latin-1 (PEP 3333); the app reads them as UTF-8."""
    try:
        return str(raw).encode("latin-1").decode("utf-8")
    except UnicodeError:
        return str(raw)


def _host(environ: dict[str, Any]) -> str:
    host = str(environ.get("HTTP_HOST") or environ.get("SERVER_NAME", ""))
    return host.rsplit(":", 1)[0] if not host.endswith("]") else host
