"""A forward-auth proxy for the demo, doing what nginx ``auth_request`` does: ask the gateway's
``/verify``, then serve the app (200), redirect to the login URL (401) or refuse (403).

Like the nginx template (issue #14), it judges what it serves: the host is the sample app's
configured one, never the client's ``Host`` header (which the app is then given, so judged
and served host are one); the path is the request target exactly as the client sent it;
the client address is the socket peer, never a client-sent ``X-Forwarded-For``.
"""
from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import quote

from werkzeug.test import Client

StartResponse = Callable[..., Any]
_IDENTITY = ("Remote-User", "Remote-Groups", "Remote-Name", "Remote-Email")


class ForwardAuthProxy:
    def __init__(self, gateway: Any, upstream: Any, *, host: str) -> None:
        """``host`` is the sample app's own ``name:port``: the only host this proxy serves."""
        self._gateway = Client(gateway, use_cookies=False)
        self._upstream = upstream
        self._host = host

    def __call__(self, environ: dict[str, Any], start_response: StartResponse
                 ) -> Iterable[bytes]:
        uri = original_uri(environ)
        if uri is None:  # absolute-form, authority-form (CONNECT) or asterisk: not ours
            return _refuse(start_response, "400 Bad Request")
        environ["HTTP_HOST"] = self._host  # the app serves the host that was judged
        request_id = secrets.token_hex(8)  # as nginx's $request_id: one per request
        headers = {
            "X-Request-ID": request_id,
            "X-Original-URI": uri, "X-Original-Method": environ.get("REQUEST_METHOD", "GET"),
            "X-Forwarded-Proto": environ.get("wsgi.url_scheme", "http"),
            "X-Forwarded-Host": self._host,
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
        return self._forbidden(headers, start_response)

    def _forbidden(self, headers: dict[str, str], start_response: StartResponse
                   ) -> list[bytes]:
        """As nginx's ``error_page 403``: the gateway's refusal page, status 403, with the
        request id /verify audited (issue 17 item 3)."""
        page = self._gateway.get("/authgate/forbidden", headers={
            "Cookie": headers["Cookie"], "User-Agent": headers["User-Agent"],
            "X-Request-ID": headers["X-Request-ID"]}, environ_base={"REMOTE_ADDR": "127.0.0.1"})
        if page.status_code != 403:  # the gateway could not say more: still refused
            return _refuse(start_response, "403 Forbidden")
        body = page.get_data()
        keep = [(k, v) for k, v in page.headers.items()
                if k.lower() not in ("content-length", "set-cookie")]
        start_response("403 Forbidden", [*keep, ("Content-Length", str(len(body))),
                                         ("X-Request-ID", headers["X-Request-ID"])])
        return [body]


def original_uri(environ: dict[str, Any]) -> str | None:
    """The request target as sent (werkzeug's server keeps it in ``REQUEST_URI``), so the
    gateway judges ``;``, ``%2F`` or ``..`` exactly as the client wrote them; None unless
    it is origin-form (``/path?query``)."""
    raw = environ.get("REQUEST_URI") or environ.get("RAW_URI")
    if raw is None:  # another WSGI server: rebuild it from the decoded parts
        raw = quote(environ.get("PATH_INFO", "/"), safe="/%:@!$&'()*+,;=-._~")
        if environ.get("QUERY_STRING"):
            raw += "?" + environ["QUERY_STRING"]
    text = str(raw)
    return text if text.startswith("/") and not text.startswith("//") else None


def _refuse(start_response: StartResponse, status: str) -> list[bytes]:
    body = b"authgate refused this request.\n"
    start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
