"""Self-service: my factors, my sessions, my recent sign-ins (ASVS 2.2.3, 3.3.3, 3.3.4)."""
from __future__ import annotations

from flask import Blueprint, g, redirect, render_template, request
from werkzeug.wrappers import Response as BaseResponse

from authgate.audit.signins import sign_in_history
from authgate.core.values import AuditEvent, Level, Outcome
from authgate.web.access import require
from authgate.web.context import services
from authgate.web.steps import meta, with_rd

bp = Blueprint("account", __name__, url_prefix="/account")


@bp.get("")
@require("self")
def overview() -> str:
    svc = services()
    session = g.session
    return render_template(
        "account.html", session=session,
        summary=svc.mfa.factors.summary(session.username),
        sessions=svc.sessions.store.list_for_user(session.username),
        history=sign_in_history(svc.audit_store, username=session.username,
                                now=svc.clock.now()),
        notice=request.args.get("done", ""))


def _fresh_enough() -> bool:
    svc = services()
    fresh = svc.policies.current.settings.enrolment.fresh_auth_for_new_factor
    return bool(g.session.level.satisfies(Level.MFA)
                and svc.clock.now() - g.session.auth_time <= fresh)


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
        return redirect(with_rd("/login", "/account"), code=303)
    services().mfa.factors.remove(username=g.session.username, credential_id=cred_id,
                                  by=g.session.username, reason="removed by its owner",
                                  meta=meta())
    return redirect("/login?rd=%2Faccount", code=303)  # every session ended, this one too


@bp.post("/sessions/<id_hash>/end")
@require("self")
def end_session(id_hash: str) -> BaseResponse:
    svc = services()
    mine = {s.id_hash: s for s in svc.sessions.store.list_for_user(g.session.username)}
    if id_hash in mine:
        svc.sessions.end(mine[id_hash])
        _audit_session_end(1, "one")
    return redirect("/account?done=session", code=303)


@bp.post("/sessions/end-others")
@require("self")
def end_others() -> BaseResponse:
    svc = services()
    ended = 0
    for other in svc.sessions.store.list_for_user(g.session.username):
        if other.id_hash != g.session.id_hash and svc.sessions.end(other):
            ended += 1
    _audit_session_end(ended, "others")
    return redirect("/account?done=sessions", code=303)


def _audit_session_end(count: int, which: str) -> None:
    m = meta()
    services().audit.record(AuditEvent(
        event="session.ended_by_user", outcome=Outcome.SUCCESS, reason=which,
        username=g.session.username, client_ip=m.client_ip, user_agent=m.user_agent,
        request_id=m.request_id, detail=(("count", str(count)),)))
