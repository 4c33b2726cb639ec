"""The session cookie: ``__Host-`` prefixed and host-only unless a shared SSO domain is
configured (the documented exception, ASVS 3.4.1-3.4.5). Always Secure, HttpOnly, Lax."""
from __future__ import annotations

from flask import request
from werkzeug.wrappers import Response as BaseResponse

from authgate.config.settings import SessionSettings
from authgate.web.context import services


def cookie_name_for(s: SessionSettings) -> str:
    return s.cookie_name if s.cookie_domain else f"__Host-{s.cookie_name}"


def cookie_name() -> str:
    return cookie_name_for(services().settings.session)


def session_token() -> str | None:
    return request.cookies.get(cookie_name())


def set_session_cookie(response: BaseResponse, token: str) -> None:
    s = services().settings.session
    response.set_cookie(cookie_name(), token, max_age=int(s.max_age.total_seconds()),
                        path="/", domain=s.cookie_domain, secure=True, httponly=True,
                        samesite="Lax")


def clear_session_cookie(response: BaseResponse) -> None:
    s = services().settings.session
    response.delete_cookie(cookie_name(), path="/", domain=s.cookie_domain, secure=True,
                           httponly=True, samesite="Lax")
