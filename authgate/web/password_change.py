"""Changing an expired or must-change password before signing in (Active Directory).

The page is only for a login the directory has just answered "password expired" or "must
change" (AD data 532/773, which come only with the right password): the password step leaves
a short-lived, signed marker naming the account, and the change needs it. Without it, anyone
holding a stolen password could change the owner's domain password at any time and end
their sessions, second factors or not (outside attack on issue #14's stack).
"""
from __future__ import annotations

from datetime import datetime, timedelta

from flask import Blueprint, render_template, request, session

from authgate.audit.names import NameMask
from authgate.core.values import AuditEvent, Outcome
from authgate.directory import normalise_username
from authgate.login.password import LoginAttempt
from authgate.web.context import meta, return_url, services

bp = Blueprint("password", __name__)
#: the signed page-session key the password step sets when the directory demands a change
PENDING = "password_change_for"
#: how long after that answer the change may be made
PENDING_FOR = timedelta(minutes=10)


def change_page(username: str, rd: str, error: str | None = None, status: int = 200, *,
                refused: str = "") -> tuple[str, int]:
    """``refused`` names the field the error is about (aria-invalid, WCAG 3.3.1)."""
    return render_template("password_change.html", username=username, rd=rd,
                           error=error, refused=refused), status


def offer_change(username: str, rd: str, message: str) -> tuple[str, int]:
    """The password step's answer to an expired or must-change password: the change page,
    and the marker that lets this browser change this account's password for a while."""
    until = services().clock.now() + PENDING_FOR
    session[PENDING] = {"user": normalise_username(username), "until": until.isoformat()}
    return change_page(username, rd, message)


def _pending_for(username: str) -> bool:
    marker = session.get(PENDING)
    if not isinstance(marker, dict) or marker.get("user") != normalise_username(username):
        return False
    try:
        until = datetime.fromisoformat(str(marker.get("until", "")))
    except ValueError:
        return False
    return until > services().clock.now()


@bp.post("/password/change")
def change() -> tuple[str, int]:
    rd = return_url(request.form.get("rd"))
    username = request.form.get("username", "")[:256]
    m = meta()
    if not _pending_for(username):
        audit = services().audit  # a typed name nobody confirmed: its pseudonym only
        audit.record(AuditEvent.for_request(
            m, "password.change", Outcome.DENY, "no_pending_change",
            username=NameMask.for_keyring(audit.keyring).recorded(
                normalise_username(username), confirmed=False)))
        return render_template("login.html", rd=rd, session=None, error=(
            "Sign in first: a password can be changed here only when sign-in asks for it.")), 403
    new = request.form.get("new_password", "")
    if new != request.form.get("confirm_password", ""):
        return change_page(username, rd, "The two new passwords differ.", 400,
                           refused="confirm_password")
    result = services().login.change_password(LoginAttempt(
        username=username, password=request.form.get("old_password", ""),
        client_ip=m.client_ip, user_agent=m.user_agent, request_id=m.request_id,
        method=m.method, path=m.path), new)
    if not result.changed:
        return change_page(username, rd, result.message, 400, refused=result.field)
    session.pop(PENDING, None)
    return render_template("login.html", rd=rd, error=None, session=None,
                           notice="Your password was changed. Sign in with the new one."), 200
