"""Passkey sign-in views (``login.passkey.PasskeyLogin`` holds the use case).

Off unless ``webauthn.passkey_sign_in`` is set. The challenge is bound to this browser by a
random handle in Flask's signed cookie, taken (popped) on verify so it works once.
"""
from __future__ import annotations

import math
import secrets

from flask import Blueprint, abort, request, session
from werkzeug.wrappers import Response as BaseResponse

from authgate.factors.errors import FactorError
from authgate.login.passkey import PasskeyRateLimited
from authgate.web.context import meta, return_url, services
from authgate.web.cookies import session_token
from authgate.web.steps import next_json, options_json, refused_json, remember_failure

bp = Blueprint("passkey", __name__)
#: with a next step (issue 17 item 6); the same for every failure (the reason is audited)
_REFUSED = ("The passkey was not accepted. Try another passkey or security key, or sign in "
            "with your username and password.")


def _enabled() -> None:
    if not services().settings.webauthn.passkey_sign_in:
        abort(404)


_TOO_MANY = ("Too many passkey sign-ins from this network address. Wait a minute and try "
             "again, or sign in with your username and password.")


@bp.post("/login/passkey/options")
def options() -> BaseResponse | tuple[BaseResponse, int]:
    """A challenge bound to this browser (a random handle in the signed cookie)."""
    _enabled()
    handle = secrets.token_urlsafe(16)
    try:
        challenge = services().passkey_login.options(handle=handle,
                                                      client_ip=meta().client_ip)
    except PasskeyRateLimited as exc:
        return _too_many(exc)
    session["passkey"] = handle
    return options_json(challenge)


@bp.post("/login/passkey/verify")
def verify() -> BaseResponse | tuple[BaseResponse, int]:
    _enabled()
    handle = str(session.get("passkey", ""))
    try:
        issued = services().passkey_login.sign_in(
            handle=handle, credential_json=request.get_data(as_text=True), meta=meta(),
            replacing=session_token())  # whatever session this browser had ends
    except PasskeyRateLimited as exc:
        return _too_many(exc)  # nothing was done: the handle stays for after the wait
    except FactorError:
        session.pop("passkey", None)  # its challenge is spent (taken server-side)
        remember_failure()
        return refused_json(_REFUSED, 401)
    session.pop("passkey", None)
    return next_json(issued, return_url(request.args.get("rd")))


def _too_many(exc: PasskeyRateLimited) -> tuple[BaseResponse, int]:
    """429 with the seconds to wait (RFC 6585); nothing was stored or recorded."""
    answer, status = refused_json(_TOO_MANY, 429)
    answer.headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
    return answer, status
