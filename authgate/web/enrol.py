"""Binding a new factor: an admin's enrolment code first (or a fresh strong login to add
another one), then an authenticator app (TOTP, QR code) or a security key / passkey.

Registering never raises the session that registered it (issue 14 finding 3): the new
factor is proven afterwards, in the normal sign-in or step-up step (``/login/next``). Who
may bind what is ``credentials.enrolment.may_enrol``.
"""
from __future__ import annotations

import segno
from flask import (
    Blueprint,
    Response,
    abort,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
)
from werkzeug.wrappers import Response as BaseResponse

from authgate.core.values import SessionRecord
from authgate.credentials.enrolment import ENROL_CODE_WINDOW, REDEEMED, FactorKind
from authgate.credentials.recovery import recovery_codes_file
from authgate.credentials.totp import PendingTotp
from authgate.factors.errors import FactorError
from authgate.web.context import meta, rd_param, services
from authgate.web.factor_login import FEW_RECOVERY_CODES
from authgate.web.steps import (
    challenge_key,
    enrol_permit,
    options_json,
    refused_json,
    require_session,
    with_rd,
)

bp = Blueprint("enrol", __name__, url_prefix="/enrol")


_KEY_NEEDS_CODE = ("A security key can only be added with an enrolment code from the IT "
                   "service desk, or right after signing in with a security key you have.")


_CODE_REFUSED = ("That enrolment code was not accepted. Check it and try again: codes work "
                 "once, for one person. If it still fails, ask the IT service desk for a new "
                 "one.")
#: after the password step it is safe to say a code of this user's has expired (issue 17
#: item 6): the password already proved who is asking; another user's code stays generic
_CODE_EXPIRED = ("This enrolment code has expired. Ask the IT service desk for a new one "
                 "(codes work for a limited time).")
_TOTP_RETRY = ("That code didn't match. Check that your phone's clock is right and type the "
               "code your app shows now (a new one appears every 30 seconds).")
_TOTP_EXPIRED = ("That set-up expired. Remove the entry it added to your app, then scan "
                 "this new code and type the code the app shows.")


def _allowed_session(kind: FactorKind) -> SessionRecord:
    """The session, if the enrolment rule lets it bind ``kind``; else audited and refused
    (a script gets 403 JSON, a form goes back to the enrolment page)."""
    session = require_session()
    permit = enrol_permit(session, kind)
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
    return redirect(_finish_url(rd), code=303)


def _finish_url(rd: str) -> str:
    """The recovery-codes step right after a device was bound (its default next step)."""
    return with_rd("/enrol/finish", rd) + ("&" if rd else "?") + "added=1"


@bp.get("")
def start() -> str | BaseResponse:
    session = require_session()
    rd = rd_param()
    svc = services()
    key = enrol_permit(session, "webauthn").allowed
    if key or enrol_permit(session, "totp").allowed:
        return render_template("enrol_choose.html", session=session, rd=rd, key=key,
                               key_note=None if key else _KEY_NEEDS_CODE)
    if svc.mfa.factors.has_factors(session.username):
        # Adding a factor needs a fresh strong login (ASVS 3.7.1): prove a device you have,
        # then back here (the login page would send a signed-in user straight back: a loop).
        return redirect(with_rd("/login/next", with_rd("/enrol", rd)) + "&fresh=1", code=303)
    return render_template("enrol_code.html", session=session, rd=rd, error=None)


@bp.post("/code")
def code_submit() -> BaseResponse | tuple[str, int]:
    session = require_session()
    rd = rd_param()
    svc = services()
    reason = svc.mfa.enrolment.redeem_reason(username=session.username,
                                             code=request.form.get("code", ""), meta=meta(),
                                             regulator=svc.regulator)
    if reason != REDEEMED:  # a user adding a key to a device they have is told so
        return render_template("enrol_code.html", session=session, rd=rd,
                               adding=svc.mfa.factors.has_factors(session.username),
                               error=_CODE_EXPIRED if reason == "code_expired"
                               else _CODE_REFUSED), 401
    until = (svc.clock.now() + ENROL_CODE_WINDOW).isoformat()
    svc.sessions.annotate(session, enrol_until=until)
    return redirect(with_rd("/enrol", rd), code=303)


@bp.post("/totp/start")
def totp_start() -> str:
    session = _allowed_session("totp")
    pending = services().mfa.totp.start(username=session.username,
                                        name=request.form.get("name", "Authenticator app"),
                                        meta=meta())
    return _totp_page(session, pending, error=None)[0]


def _totp_page(session: SessionRecord, pending: PendingTotp, *, error: str | None,
               status: int = 200) -> tuple[str, int]:
    """The set-up page: QR code, the key as text, the code field (and its error)."""
    qr = segno.make(pending.uri, error="m").svg_inline(omitsize=True, dark="#1b2430",
                                                       title="QR code for your authenticator app")
    return render_template("enrol_totp.html", session=session, rd=rd_param(), pending=pending,
                           qr=qr, error=error), status


@bp.post("/totp/confirm")
def totp_confirm() -> BaseResponse | tuple[str, int]:
    """A wrong code keeps the same pending secret and retries in place (issue 17 item 4):
    the entry already on the phone stays the right one. Only a set-up past its lifetime
    (``credentials.totp.PENDING_LIFETIME``) gets a new secret, and the page says so."""
    session = _allowed_session("totp")
    totp = services().mfa.totp
    credential_id = request.form.get("credential_id", "")
    try:
        totp.confirm(username=session.username, credential_id=credential_id,
                     code=request.form.get("code", ""), meta=meta())
    except FactorError:
        pending = totp.pending(username=session.username, credential_id=credential_id)
        if pending is not None:
            return _totp_page(session, pending, error=_TOTP_RETRY, status=401)
        fresh = totp.start(username=session.username, name="Authenticator app", meta=meta())
        return _totp_page(session, fresh, error=_TOTP_EXPIRED, status=401)
    return _registered(rd_param())


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
    return jsonify(ok=True, redirect=_finish_url(rd_param()))


@bp.route("/finish", methods=["GET", "POST"])
def finish() -> str:
    """Recovery codes: generated on request (POST) and shown once (ASVS 2.6.x). Right after
    a device was bound (``added``) with no codes yet, creating them is the page's default
    step (issue 17 item 7); skipping is a secondary link."""
    svc = services()
    codes: tuple[str, ...] = ()
    session = _allowed_session("recovery") if request.method == "POST" else require_session()
    if request.method == "POST":
        codes = svc.mfa.recovery.regenerate(username=session.username, meta=meta())
    left = svc.mfa.recovery.remaining(session.username)
    return render_template("enrol_finish.html", session=session, codes=codes, left=left,
                           rd=rd_param(), added=request.values.get("added") == "1",
                           few=FEW_RECOVERY_CODES)


@bp.post("/recovery-codes.txt")
def recovery_download() -> BaseResponse:
    """The codes just shown, as a text file to keep (issue 17 item 7). The page posts back
    what it shows (nothing is kept in plain text on the server); only well-formed codes are
    echoed, as an attachment that no cache keeps."""
    session = require_session()
    text = recovery_codes_file(request.form.getlist("code"), username=session.username,
                               issuer="City staff sign-in")
    if text is None:
        abort(400)
    response = Response(text, mimetype="text/plain")
    response.headers["Content-Disposition"] = 'attachment; filename="recovery-codes.txt"'
    response.headers["Cache-Control"] = "no-store"
    return response
