"""A forward-auth proxy for the demo, doing what nginx ``auth_request`` does: ask the gateway's
``/verify``, then serve the app (200), redirect to the login URL (401) or refuse (403)."""
from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import quote

from werkzeug.test import Client

StartResponse = Callable[..., Any]
_IDENTITY = ("Remote-User", "Remote-Groups", "Remote-Name", "Remote-Email")


class ForwardAuthProxy:
    def __init__(self, gateway: Any, upstream: Any) -> None:
        self._gateway = Client(gateway, use_cookies=False)
        self._upstream = upstream

    def __call__(self, environ: dict[str, Any], start_response: StartResponse
                 ) -> Iterable[bytes]:
        uri = quote(environ.get("PATH_INFO", "/"), safe="/%:@!$&'()*+,;=-._~")
        if environ.get("QUERY_STRING"):
            uri += "?" + environ["QUERY_STRING"]
        headers = {
            "X-Original-URI": uri, "X-Original-Method": environ.get("REQUEST_METHOD", "GET"),
            "X-Forwarded-Proto": environ.get("wsgi.url_scheme", "http"),
            "X-Forwarded-Host": environ.get("HTTP_HOST", ""),
            "X-Forwarded-For": environ.get("REMOTE_ADDR", ""),
            "Cookie": environ.get("HTTP_COOKIE", ""),
            "User-Agent": environ.get("HTTP_USER_AGENT", ""),
        }
        verdict = self._gateway.get("/verify", headers=headers,
                                    environ_base={"REMOTE_ADDR": "127.0.0.1"})
        if verdict.status_code == 200:
            for name in _IDENTITY:  # overwrite whatever the client sent
                key = "HTTP_" + name.upper().replace("-", "_")
                environ.pop(key, None)
                if verdict.headers.get(name):
                    environ[key] = verdict.headers[name]
            return self._upstream(environ, start_response)  # type: ignore[no-any-return]
        if verdict.status_code == 401 and verdict.headers.get("Location"):
            start_response("302 Found", [("Location", verdict.headers["Location"]),
                                         ("Content-Length", "0")])
            return [b""]
        body = b"403 Forbidden: authgate refused this request.\n"
        start_response("403 Forbidden", [("Content-Type", "text/plain"),
                                         ("Content-Length", str(len(body)))])
        return [body]
