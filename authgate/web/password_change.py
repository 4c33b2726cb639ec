"""Changing an expired or must-change password before signing in (Active Directory)."""
from __future__ import annotations

from flask import Blueprint, render_template, request

from authgate.login.password import LoginAttempt
from authgate.web.context import meta, return_url, services

bp = Blueprint("password", __name__)


def change_page(username: str, rd: str, error: str | None = None,
                status: int = 200) -> tuple[str, int]:
    return render_template("password_change.html", username=username, rd=rd,
                           error=error), status


@bp.post("/password/change")
def change() -> tuple[str, int]:
    rd = return_url(request.form.get("rd"))
    username = request.form.get("username", "")[:256]
    new = request.form.get("new_password", "")
    if new != request.form.get("confirm_password", ""):
        return change_page(username, rd, "The two new passwords differ.", 400)
    m = meta()
    result = services().login.change_password(LoginAttempt(
        username=username, password=request.form.get("old_password", ""),
        client_ip=m.client_ip, user_agent=m.user_agent, request_id=m.request_id), new)
    if not result.changed:
        return change_page(username, rd, result.message, 400)
    return render_template("login.html", rd=rd, error=None, session=None,
                           notice="Your password was changed. Sign in with the new one."), 200
