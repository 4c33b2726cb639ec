"""Self-service: my factors, my sessions, my recent sign-ins (ASVS 2.2.3, 3.3.3, 3.3.4)."""
from __future__ import annotations

from flask import Blueprint, g, redirect, render_template, request
from werkzeug.wrappers import Response as BaseResponse

from authgate.credentials.enrolment import fresh_strong_login
from authgate.sessions.history import recent_activity
from authgate.web.access import require
from authgate.web.context import meta, services
from authgate.web.steps import with_rd

bp = Blueprint("account", __name__, url_prefix="/account")


@bp.get("")
@require("self")
def overview() -> str:
    svc = services()
    session = g.session
    return render_template(
        "account.html", session=session,
        summary=svc.mfa.factors.summary(session.username),
        sessions=svc.sessions.sessions_of(session.username),
        history=recent_activity(svc.audit_store, username=session.username,
                                now=svc.clock.now()),
        notice=request.args.get("done", ""))


def _fresh_enough() -> bool:
    """The same freshness rule as adding a factor (one rule, in credentials.enrolment)."""
    svc = services()
    return fresh_strong_login(
        g.session, now=svc.clock.now(),
        within=svc.policies.current.settings.enrolment.fresh_auth_for_new_factor)


@bp.post("/factors/<cred_id>/rename")
@require("self")
def rename(cred_id: str) -> BaseResponse:
    services().mfa.factors.rename(username=g.session.username, credential_id=cred_id,
                                  name=request.form.get("name", ""), meta=meta())
    return redirect("/account?done=renamed", code=303)


@bp.post("/factors/<cred_id>/remove")
@require("self")
def remove(cred_id: str) -> BaseResponse:
    if not _fresh_enough():  # removing a factor needs a fresh strong login (ASVS 3.7.1)
        # ask for a device once (``/login/next?fresh=1``), then back here to choose Remove
        # again: a POST is never replayed for the user (/login alone sent a signed-in user
        # straight back, and nothing was removed, nothing said)
        return redirect(with_rd("/login/next", "/account?done=confirmed") + "&fresh=1",
                        code=303)
    services().mfa.factors.remove(username=g.session.username, credential_id=cred_id,
                                  by=g.session.username, reason="removed by its owner",
                                  meta=meta())
    return redirect("/login?rd=%2Faccount", code=303)  # every session ended, this one too


@bp.post("/sessions/<id_hash>/end")
@require("self")
def end_session(id_hash: str) -> BaseResponse:
    services().session_ending.end_one(g.session, id_hash=id_hash, meta=meta())
    return redirect("/account?done=session", code=303)


@bp.post("/sessions/end-others")
@require("self")
def end_others() -> BaseResponse:
    services().session_ending.end_others(g.session, meta=meta())
    return redirect("/account?done=sessions", code=303)
