"""Binding a new factor: an admin's enrolment code first (or a fresh strong login to add
another one), then an authenticator app (TOTP, QR code) or a security key / passkey.

Registering never raises the session that registered it (issue 14 finding 3): the new
factor is proven afterwards, in the normal sign-in or step-up step (``/login/next``). Who
may bind what is ``credentials.enrolment.may_enrol``.
"""
from __future__ import annotations

import segno
from flask import Blueprint, abort, jsonify, make_response, redirect, render_template, request
from werkzeug.wrappers import Response as BaseResponse

from authgate.core.values import SessionRecord
from authgate.credentials.enrolment import (
    ENROL_CODE_WINDOW,
    EnrolPermit,
    FactorKind,
    may_enrol,
)
from authgate.factors.errors import FactorError
from authgate.web.context import meta, rd_param, remote_ip, services
from authgate.web.steps import (
    challenge_key,
    options_json,
    refused_json,
    require_session,
    with_rd,
)

bp = Blueprint("enrol", __name__, url_prefix="/enrol")


_KEY_NEEDS_CODE = ("A security key can only be added with an enrolment code from the IT "
                   "service desk, or right after signing in with a security key you have.")


def _permit(session: SessionRecord, kind: FactorKind) -> EnrolPermit:
    """The enrolment rule with this request's facts."""
    svc = services()
    return may_enrol(kind=kind, session=session, now=svc.clock.now(),
                     policy=svc.policies.current.settings,
                     has_factors=svc.mfa.factors.has_factors(session.username), ip=remote_ip())


def _allowed_session(kind: FactorKind) -> SessionRecord:
    """The session, if the enrolment rule lets it bind ``kind``; else audited and refused
    (a script gets 403 JSON, a form goes back to the enrolment page)."""
    session = require_session()
    permit = _permit(session, kind)
    if not permit.allowed:
        services().mfa.enrolment.refuse(username=session.username, kind=kind,
                                        reason=permit.reason, meta=meta())
        if kind == "webauthn":
            abort(make_response(jsonify(ok=False, error=_KEY_NEEDS_CODE), 403))
        abort(redirect(with_rd("/enrol", rd_param()), code=303))
    return session


def _registered(rd: str) -> BaseResponse:
    """After binding: on to recovery codes, then ``/login/next``, which asks the user to
    prove the new factor. The session keeps its level and its id (nothing was proven)."""
    return redirect(with_rd("/enrol/finish", rd), code=303)


@bp.get("")
def start() -> str | BaseResponse:
    session = require_session()
    rd = rd_param()
    svc = services()
    key = _permit(session, "webauthn").allowed
    if key or _permit(session, "totp").allowed:
        return render_template("enrol_choose.html", session=session, rd=rd, key=key,
                               key_note=None if key else _KEY_NEEDS_CODE)
    if svc.mfa.factors.has_factors(session.username):
        # Adding a factor needs a fresh strong login (ASVS 3.7.1): sign in again.
        return redirect(with_rd("/login", with_rd("/enrol", rd) if not rd else rd), code=303)
    return render_template("enrol_code.html", session=session, rd=rd, error=None)


@bp.post("/code")
def code_submit() -> BaseResponse | tuple[str, int]:
    session = require_session()
    rd = rd_param()
    svc = services()
    if not svc.mfa.enrolment.redeem(username=session.username,
                                    code=request.form.get("code", ""), meta=meta(),
                                    regulator=svc.regulator):
        return render_template("enrol_code.html", session=session, rd=rd,
                               error="That enrolment code was not accepted. Codes work once, "
                               "for one person, until they expire. Ask the IT service desk "
                               "for a new one."), 401
    until = (svc.clock.now() + ENROL_CODE_WINDOW).isoformat()
    svc.sessions.annotate(session, enrol_until=until)
    return redirect(with_rd("/enrol", rd), code=303)


@bp.post("/totp/start")
def totp_start() -> str:
    session = _allowed_session("totp")
    pending = services().mfa.totp.start(username=session.username,
                                        name=request.form.get("name", "Authenticator app"),
                                        meta=meta())
    qr = segno.make(pending.uri, error="m").svg_inline(omitsize=True, dark="#1b2430",
                                                       title="QR code for your authenticator app")
    return render_template("enrol_totp.html", session=session, rd=rd_param(), pending=pending,
                           qr=qr, error=None)


@bp.post("/totp/confirm")
def totp_confirm() -> BaseResponse | tuple[str, int]:
    session = _allowed_session("totp")
    rd = rd_param()
    try:
        services().mfa.totp.confirm(username=session.username,
                                    credential_id=request.form.get("credential_id", ""),
                                    code=request.form.get("code", ""), meta=meta())
    except FactorError:
        return render_template("message.html", title="Code not accepted",
                               message="The code did not match. Start the set-up again and "
                               "type the code your app shows now."), 401
    return _registered(rd)


@bp.post("/webauthn/options")
def webauthn_options() -> BaseResponse:
    session = _allowed_session("webauthn")
    options = services().mfa.webauthn.begin_registration(
        key=challenge_key(session, "register"), username=session.username,
        display_name=session.display_name)
    return options_json(options)


@bp.post("/webauthn/verify")
def webauthn_verify() -> BaseResponse | tuple[BaseResponse, int]:
    session = _allowed_session("webauthn")
    name = request.args.get("name", "Security key")
    try:
        services().mfa.webauthn.finish_registration(
            key=challenge_key(session, "register"), username=session.username, name=name,
            credential_json=request.get_data(as_text=True), meta=meta())
    except FactorError:
        return refused_json("The security key could not be registered.", 400)
    return jsonify(ok=True, redirect=with_rd("/enrol/finish", rd_param()))


@bp.route("/finish", methods=["GET", "POST"])
def finish() -> str:
    """Recovery codes: generated on request (POST) and shown once (ASVS 2.6.x)."""
    svc = services()
    codes: tuple[str, ...] = ()
    session = _allowed_session("recovery") if request.method == "POST" else require_session()
    if request.method == "POST":
        codes = svc.mfa.recovery.regenerate(username=session.username, meta=meta())
    left = svc.mfa.recovery.remaining(session.username)
    return render_template("enrol_finish.html", session=session, codes=codes, left=left,
                           rd=rd_param())
