"""Signing in and out: the password form and its submit, the signed-in home page, logout.

The blueprint keeps its historical name ``portal`` (templates and tests use ``url_for``)."""
from __future__ import annotations

from flask import Blueprint, Response, redirect, render_template, request
from werkzeug.wrappers import Response as BaseResponse

from authgate.access.next_step import Step
from authgate.core.values import Level
from authgate.login.password import LoginAttempt, LoginStatus
from authgate.sessions.history import recent_activity
from authgate.web.context import (
    meta,
    remote_ip_text,
    request_id,
    return_url,
    services,
    user_agent,
)
from authgate.web.cookies import clear_session_cookie, set_session_cookie
from authgate.web.factor_login import FEW_RECOVERY_CODES
from authgate.web.password_change import offer_change
from authgate.web.steps import current_session, remember_failure, step_for, with_rd

bp = Blueprint("portal", __name__)

_FAILURE_PAGES = {
    LoginStatus.INVALID: (401, "The username or password is incorrect."),
    LoginStatus.CONTACT_IT: (403, "This account cannot sign in right now. Please contact "
                                  "the IT service desk."),
    LoginStatus.CHANGE_PASSWORD: (403, "Your password has expired or must be changed before "
                                       "you can sign in."),
    LoginStatus.UNAVAILABLE: (503, "Sign-in is unavailable right now. Please try again in a "
                                   "few minutes."),
}

#: the session's level in words staff know ("phishing-resistant" is jargon)
STRENGTH = {Level.PASSWORD: "password only", Level.MFA: "password and a second device",
            Level.PHISHING_RESISTANT: "security key or passkey"}


@bp.get("/login")
def login_form() -> BaseResponse | str:
    rd = return_url(request.args.get("rd"))
    session = current_session()
    reauth = request.args.get("reauth") == "1"  # a sensitive action wants a fresh login
    if session is not None and not reauth and step_for(session, rd) is not Step.PASSWORD:
        return redirect(with_rd("/login/next", rd), code=303)  # done, step-up or denied
    return render_template("login.html", rd=rd, error=None, session=session)


@bp.post("/login")
def login_submit() -> BaseResponse | tuple[str, int]:
    svc = services()
    rd = return_url(request.form.get("rd"))
    previous = current_session()
    result = svc.login.password_step(LoginAttempt(
        username=request.form.get("username", ""), password=request.form.get("password", ""),
        client_ip=remote_ip_text(), user_agent=user_agent(), request_id=request_id(),
        method=request.method, path=request.path))
    if result.status is LoginStatus.CHANGE_PASSWORD:
        return offer_change(result.username, rd, _FAILURE_PAGES[result.status][1])
    if result.status is not LoginStatus.OK or result.issued is None:
        # The username typed stays in the form and the password gets the focus (issue 17
        # item 6): it is the user's own input, the same for every account, so it tells
        # nothing about which accounts exist (issue 15 item 5).
        remember_failure()
        status, message = _FAILURE_PAGES[result.status]
        return render_template("login.html", rd=rd, error=message, session=None,
                               username=request.form.get("username", "")[:256],
                               refused=status == 401), status
    if previous is not None:
        svc.sessions.end(previous)  # a login always starts from a fresh session id
    response = redirect(with_rd("/login/next", rd), code=303)
    set_session_cookie(response, result.issued.token)
    return response


@bp.get("/")
def home() -> BaseResponse | str:
    """The portal home: a hub for self-service (issue 17 item 5), so staff find their
    devices, sessions and recent activity without typing a URL."""
    session = current_session()
    if session is None:
        return redirect("/login", code=303)
    svc = services()
    return render_template(
        "home.html", session=session, strength=STRENGTH.get(session.level, "signed in"),
        summary=svc.mfa.factors.summary(session.username), few=FEW_RECOVERY_CODES,
        sessions=svc.sessions.sessions_of(session.username),
        activity=recent_activity(svc.audit_store, username=session.username,
                                 now=svc.clock.now()))


@bp.get("/logout")
def logout_form() -> str:
    return render_template("logout.html", session=current_session())


@bp.post("/logout")
def logout_submit() -> BaseResponse:
    session = current_session()
    if session is not None:
        services().session_ending.logout(session, meta=meta())
    response = Response(render_template("signed_out.html"))
    clear_session_cookie(response)
    return response
