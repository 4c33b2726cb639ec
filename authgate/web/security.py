"""Security headers on every page (ASVS 14.4): a strict CSP with a per-request nonce, no
framing, no sniffing, no referrer, HSTS over https, no caching of authenticated pages."""
from __future__ import annotations

import secrets
from urllib.parse import urlsplit

from flask import Flask, Response, g, request

from authgate.web.context import peer_trusted, services


def csp_nonce() -> str:
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(16)
    return g.csp_nonce  # type: ignore[no-any-return]


def _form_targets() -> str:
    """Where a form may lead: this origin and, after login, the protected apps (Chromium
    applies ``form-action`` to the redirect that follows a POST)."""
    server = services().settings.server
    targets = ["'self'"]
    for pattern in server.protected_domains:
        targets.append(f"https://{pattern}:*")
        targets.append(f"https://{pattern}")
    if server.allow_http_localhost:
        targets.append("http://localhost:*")
    return " ".join(targets)


def _portal_origin() -> str:
    base = urlsplit(services().settings.server.public_url)
    return f"{base.scheme}://{base.netloc}"


def _is_https() -> bool:
    if request.scheme == "https":
        return True
    return peer_trusted() and request.headers.get("X-Forwarded-Proto", "") == "https"


def add_headers(response: Response) -> Response:
    nonce = csp_nonce()
    # the portal's own origin too: the refusal page is shown on the apps' hosts (errors.py)
    portal = _portal_origin()
    response.headers["Content-Security-Policy"] = (
        f"default-src 'none'; script-src 'self' 'nonce-{nonce}'; style-src 'self' {portal}; "
        f"img-src 'self' data: {portal}; connect-src 'self'; form-action {_form_targets()}; "
        "frame-ancestors 'none'; base-uri 'none'"
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
    response.headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"
    response.headers.setdefault("Cache-Control", "no-store")
    if _is_https():
        response.headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
    return response


def init_app(app: Flask) -> None:
    app.after_request(add_headers)
    app.jinja_env.globals["csp_nonce"] = csp_nonce
