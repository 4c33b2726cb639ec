"""Passkey sign-in: a discoverable WebAuthn credential with user verification, without a
username or password (W3C WebAuthn §5.1.4 with an empty allowCredentials list).

Off unless ``webauthn.passkey_sign_in`` is set. The passkey proves possession and user
verification (PIN or biometric): the session starts at ``phishing_resistant``. The account
must still be enabled in the directory, and the per-user throttle applies.
"""
from __future__ import annotations

import hashlib
import secrets

from flask import Blueprint, abort, jsonify, request, session
from werkzeug.wrappers import Response as BaseResponse

from authgate.core.values import AuditEvent, Level, Outcome
from authgate.factors.errors import FactorError
from authgate.web.context import services
from authgate.web.cookies import set_session_cookie
from authgate.web.portal import return_url
from authgate.web.steps import meta, with_rd

bp = Blueprint("passkey", __name__)
_REFUSED = "The passkey was not accepted."


def _enabled() -> None:
    if not services().settings.webauthn.passkey_sign_in:
        abort(404)


def _key(handle: str) -> str:
    return hashlib.sha256(f"passkey:{handle}".encode()).hexdigest()


@bp.post("/login/passkey/options")
def options() -> BaseResponse:
    """A challenge bound to this browser (a random handle in the signed cookie)."""
    _enabled()
    handle = secrets.token_urlsafe(16)
    session["passkey"] = handle
    body = services().mfa.webauthn.begin_authentication(key=_key(handle), username=None,
                                                        require_uv=True)
    return BaseResponse(body, mimetype="application/json")


@bp.post("/login/passkey/verify")
def verify() -> BaseResponse | tuple[BaseResponse, int]:
    _enabled()
    svc = services()
    handle = session.pop("passkey", "")
    m = meta()
    try:
        row, verified = svc.mfa.webauthn.finish_authentication(
            key=_key(str(handle)), credential_json=request.get_data(as_text=True),
            require_uv=True, meta=m)
    except FactorError:
        return jsonify(ok=False, error=_REFUSED), 401
    identity = svc.directory.lookup(row.username)
    admitted = svc.regulator.admit_factor(username=row.username).allowed
    if identity is None or not verified or not admitted:
        svc.audit.record(AuditEvent(
            event="login.passkey", outcome=Outcome.FAILURE,
            reason="account_unavailable" if identity is None else "refused",
            username=row.username, client_ip=m.client_ip, user_agent=m.user_agent,
            request_id=m.request_id))
        return jsonify(ok=False, error=_REFUSED), 401
    issued = svc.sessions.start(identity, level=Level.PHISHING_RESISTANT,
                                client_ip=m.client_ip, user_agent=m.user_agent)
    svc.audit.record(AuditEvent(
        event="login.passkey", outcome=Outcome.SUCCESS, reason="passkey_uv",
        username=identity.username, client_ip=m.client_ip, user_agent=m.user_agent,
        request_id=m.request_id, detail=(("credential", row.id),)))
    response = jsonify(ok=True, redirect=with_rd("/login/next",
                                                 return_url(request.args.get("rd"))))
    set_session_cookie(response, issued.token)
    return response
