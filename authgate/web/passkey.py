"""Passkey sign-in views (``login.passkey.PasskeyLogin`` holds the use case).

Off unless ``webauthn.passkey_sign_in`` is set. The challenge is bound to this browser by a
random handle in Flask's signed cookie, taken (popped) on verify so it works once.
"""
from __future__ import annotations

import secrets

from flask import Blueprint, abort, request, session
from werkzeug.wrappers import Response as BaseResponse

from authgate.factors.errors import FactorError
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


@bp.post("/login/passkey/options")
def options() -> BaseResponse:
    """A challenge bound to this browser (a random handle in the signed cookie)."""
    _enabled()
    handle = secrets.token_urlsafe(16)
    session["passkey"] = handle
    return options_json(services().passkey_login.options(handle=handle))


@bp.post("/login/passkey/verify")
def verify() -> BaseResponse | tuple[BaseResponse, int]:
    _enabled()
    handle = str(session.pop("passkey", ""))
    try:
        issued = services().passkey_login.sign_in(
            handle=handle, credential_json=request.get_data(as_text=True), meta=meta(),
            replacing=session_token())  # whatever session this browser had ends
    except FactorError:
        remember_failure()
        return refused_json(_REFUSED, 401)
    return next_json(issued, return_url(request.args.get("rd")))
