"""The admin console: find a user, issue enrolment codes, remove or reset factors, end
sessions, lift bans, see the policy in force and health. Admin role, phishing-resistant
(policy), and a fresh login for every change (ASVS 3.7.1)."""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

from flask import Blueprint, abort, g, redirect, render_template, request
from werkzeug.wrappers import Response as BaseResponse

from authgate.admin.actions import AdminActions, ReasonRequired
from authgate.admin.bans import BanView, describe_ban
from authgate.admin.people import find_people
from authgate.audit.signins import sign_in_history
from authgate.config.loader import parse_duration
from authgate.core.errors import AuthgateError, PolicyError
from authgate.credentials.enrolment import authenticated_within
from authgate.directory import normalise_username
from authgate.policy import PolicySet
from authgate.regulation import Ban
from authgate.web.access import ADMIN_CHANGE_FRESHNESS, portal_resource, require
from authgate.web.context import services
from authgate.web.steps import meta

bp = Blueprint("admin", __name__, url_prefix="/admin")


def actions() -> AdminActions:
    return services().admin


def _admin() -> str:
    return str(g.session.username)


def _fresh_or_reauth(back: str) -> BaseResponse | None:
    """Changes need a login within 15 minutes; older sessions sign in again (step-up)."""
    if authenticated_within(g.session, now=services().clock.now(),
                            within=ADMIN_CHANGE_FRESHNESS):
        return None
    return redirect(f"/login?reauth=1&rd={quote(back, safe='')}", code=303)


#: the only banners the console shows: ``?done=`` and ``?error=`` carry a key, never text,
#: so a crafted link cannot make the console say an arbitrary sentence (unknown → nothing)
DONE = {
    "code_revoked": "Enrolment code revoked.",
    "factors_reset": "All factors removed; the user's sessions ended.",
    "factor_removed": "Factor removed; the user's sessions ended.",
    "sessions_ended": "{count} session(s) ended.",
    "bans_lifted": "{count} ban(s) lifted.",
}
ERRORS = {
    "bad_ttl": "The lifetime must look like 2h or 24h.",
    "ttl_range": "The lifetime must be between 5 minutes and 7 days.",
    "no_account": "No enabled account with that name.",
    "reason_code": "Give a reason (for example how you checked identity).",
    "reason_revoke": "Give a reason to revoke the code.",
    "reason": "Give a reason: it goes to the audit trail.",
    "not_users_code": "That code is not a live enrolment code of this user.",
}


def banners() -> dict[str, str]:
    """The fixed banner texts the query string names (the keys are looked up, not shown;
    ``count`` fills a number in, and only a small number)."""
    done = DONE.get(request.args.get("done", ""), "")
    if "{count}" in done:
        count = request.args.get("count", "")
        done = done.format(count=int(count)) if count.isdigit() and len(count) <= 6 else ""
    return {"done": done, "error": ERRORS.get(request.args.get("error", ""), "")}


def _user_url(username: str) -> str:
    return f"/admin/users/{quote(username, safe='')}"


@bp.get("")
@require("admin")
def home() -> str:
    return render_template("admin_home.html", session=g.session)


@bp.get("/users")
@require("admin")
def find_user() -> BaseResponse | str:
    """By exact login name, login-name prefix or part of the display name (item 8)."""
    svc = services()
    found = find_people(directory=svc.directory, search=svc.directory_roles.user_search,
                        text=request.args.get("q", "")[:256])
    if found.exact:
        return redirect(_user_url(found.exact), code=303)
    return render_template("admin_home.html", session=g.session, query=found.query,
                           found=found)


@bp.get("/users/<username>")
@require("admin")
def user(username: str) -> str:
    svc = services()
    name = normalise_username(username)
    source = svc.directory_roles.account_status
    status = source.account_status(name) if source is not None else None
    identity = status.identity if status is not None else svc.directory.lookup(name)
    bans = [_describe(b) for b in _bans() if _names(b, name)]
    return render_template(
        "admin_user.html", session=g.session, username=name, identity=identity,
        state=(status.state.value if status is not None
               else "active" if identity else "not found"),
        summary=svc.mfa.factors.summary(name), codes=svc.mfa.enrolment.codes_for(name),
        sessions=svc.sessions.sessions_of(name), bans=bans, now=svc.clock.now(),
        history=sign_in_history(svc.audit_store, username=name, now=svc.clock.now(),
                                skip_latest_success=False),
        **banners())


def _bans() -> list[Ban]:
    return services().regulator.active_bans()


def _describe(ban: Ban) -> BanView:
    svc = services()
    return describe_ban(ban, tz=svc.policies.current.settings.defaults.tz,
                        now=svc.clock.now())


def _names(ban: Ban, name: str) -> bool:
    """The ban is on this account (``user:``, ``factor:`` or one of its ``userip:``)."""
    kind, _, rest = ban.subject.partition(":")
    return kind in ("user", "factor", "userip") and rest.split("|", 1)[0] == name


def _after(username: str, done: str = "", error: str = "", count: int | None = None
           ) -> BaseResponse:
    """Back to the user's page with a banner *key* (see ``DONE`` and ``ERRORS``)."""
    suffix = f"?done={done}" if done in DONE else f"?error={error}" if error in ERRORS else ""
    if count is not None and suffix.startswith("?done="):
        suffix += f"&count={int(count)}"
    return redirect(_user_url(username) + suffix, code=303)


@bp.post("/users/<username>/codes")
@require("admin")
def issue_code(username: str) -> BaseResponse | str:
    name = normalise_username(username)
    if (back := _fresh_or_reauth(_user_url(name))) is not None:
        return back
    try:
        ttl = parse_duration(request.form.get("ttl", "24h"))
    except ValueError:
        return _after(name, error="bad_ttl")
    if not timedelta(minutes=5) <= ttl <= timedelta(days=7):
        return _after(name, error="ttl_range")
    if services().directory.lookup(name) is None:
        return _after(name, error="no_account")
    try:
        issued = actions().issue_code(admin=_admin(), username=name, ttl=ttl,
                                      reason=request.form.get("reason", ""), meta=meta())
    except ReasonRequired:
        return _after(name, error="reason_code")
    return render_template("admin_code.html", session=g.session, issued=issued)


@bp.post("/users/<username>/codes/<code_id>/revoke")
@require("admin")
def revoke_code(username: str, code_id: str) -> BaseResponse:
    name = normalise_username(username)
    if (back := _fresh_or_reauth(_user_url(name))) is not None:
        return back
    try:
        revoked = actions().revoke_code(admin=_admin(), username=name, code_id=code_id,
                                        reason=request.form.get("reason", ""), meta=meta())
    except ReasonRequired:
        return _after(name, error="reason_revoke")
    return _after(name, done="code_revoked") if revoked else _after(name, error="not_users_code")


def _reason() -> str:
    return request.form.get("reason", "")


_NO_REASON = "reason"


@bp.post("/users/<username>/factors/reset")
@require("admin")
def reset_factors(username: str) -> BaseResponse:
    name = normalise_username(username)
    if (back := _fresh_or_reauth(_user_url(name))) is not None:
        return back
    try:
        actions().reset_factors(admin=_admin(), username=name, reason=_reason(), meta=meta())
    except ReasonRequired:
        return _after(name, error=_NO_REASON)
    return _after(name, done="factors_reset")


@bp.post("/users/<username>/factors/<cred_id>/remove")
@require("admin")
def remove_factor(username: str, cred_id: str) -> BaseResponse:
    if cred_id in ("reset", "sessions"):
        abort(404)
    name = normalise_username(username)
    if (back := _fresh_or_reauth(_user_url(name))) is not None:
        return back
    try:
        actions().remove_factor(admin=_admin(), username=name, credential_id=cred_id,
                                reason=_reason(), meta=meta())
    except ReasonRequired:
        return _after(name, error=_NO_REASON)
    return _after(name, done="factor_removed")


@bp.post("/users/<username>/sessions/end")
@require("admin")
def end_sessions(username: str) -> BaseResponse:
    name = normalise_username(username)
    if (back := _fresh_or_reauth(_user_url(name))) is not None:
        return back
    try:
        ended = actions().end_sessions(admin=_admin(), username=name, reason=_reason(),
                                       meta=meta())
    except ReasonRequired:
        return _after(name, error=_NO_REASON)
    return _after(name, done="sessions_ended", count=ended)


@bp.get("/bans")
@require("admin")
def bans() -> str:
    return render_template("admin_bans.html", session=g.session,
                           bans=[_describe(b) for b in _bans()], **banners())


@bp.post("/bans/lift")
@require("admin")
def lift_ban() -> BaseResponse:
    if (back := _fresh_or_reauth("/admin/bans")) is not None:
        return back
    try:
        lifted = actions().lift_ban(admin=_admin(), target=request.form.get("target", ""),
                                    reason=request.form.get("reason", ""), meta=meta())
    except ReasonRequired:
        return redirect("/admin/bans?error=reason", code=303)
    return redirect(f"/admin/bans?done=bans_lifted&count={len(lifted)}", code=303)


@bp.get("/sessions/end-all")
@require("admin")
def end_all_form() -> str:
    """"Suspected compromise" on a page of its own, away from everyday work (item 8)."""
    return render_template("admin_end_all.html", session=g.session)


@bp.post("/sessions/end-all")
@require("admin")
def end_all() -> BaseResponse | tuple[str, int]:
    if (back := _fresh_or_reauth("/admin/sessions/end-all")) is not None:
        return back
    if request.form.get("confirm", "").strip() != "END ALL SESSIONS":
        return render_template("admin_end_all.html", session=g.session, refused="confirm-all",
                               error="Type END ALL SESSIONS to confirm."), 400
    try:
        count = actions().end_all_sessions(admin=_admin(), reason=request.form.get("reason", ""),
                                           meta=meta())
    except ReasonRequired:
        return render_template("admin_end_all.html", session=g.session, refused="reason-all",
                               error="Give a reason: it goes to the audit trail."), 400
    return render_template("message.html", title="All sessions ended",
                           message=f"{count} session(s) ended, yours included. Everyone signs "
                                   "in again from now on."), 200


@bp.get("/policy")
@require("admin")
def policy() -> str:
    from authgate.policy.files import latest_approval_for

    runtime = services().policies
    current = runtime.current
    return render_template("admin_policy.html", session=g.session, policy=current,
                           approval=latest_approval_for(runtime.directory, current.digest),
                           rejected=runtime.rejected, portal=portal_resource(),
                           pending=_pending_change(current, runtime.directory))


#: the console replays at most this period and this many records: a page, not a batch job
#: (``authgate policy preview --jobs`` replays any period)
PREVIEW_PERIOD = timedelta(days=7)
PREVIEW_LIMIT = 50_000


def _pending_change(current: PolicySet, directory: Path) -> dict[str, Any] | None:
    """The files on disk when they differ from the set in force (an unapproved change,
    issue 19 item 4): its diff per file, and its preview and readiness summaries over the
    last ``PREVIEW_PERIOD`` (at most ``PREVIEW_LIMIT`` records). None when nothing waits;
    an invalid change is left to the rejection notice."""
    from authgate.composition.credentials import factor_params
    from authgate.credentials.webauthn import meets_policy
    from authgate.policy.diff import policy_diff
    from authgate.policy.files import compute_digest, load_policy_set
    from authgate.policy.preview_report import PreviewReport
    from authgate.policy.preview_run import replay_span, with_readiness

    try:
        if compute_digest(directory) == current.digest:
            return None
        pending = load_policy_set(directory)
    except (PolicyError, OSError):
        return None
    svc = services()
    since = svc.clock.now() - PREVIEW_PERIOD
    part = replay_span(svc.audit_store, pending, since=since, samples=0, limit=PREVIEW_LIMIT)
    params = factor_params(svc.settings, pending)
    report = with_readiness(PreviewReport.of(pending.digest, part), svc.mfa.credentials,
                            meets=lambda row: meets_policy(row, params))
    return {"digest": pending.digest, "since": since,
            "capped": part.replayed + sum(part.skipped.values()) >= PREVIEW_LIMIT,
            "diff": policy_diff(current.sources, pending.sources),
            "summary": report.summary(top=5)}


@bp.get("/health")
@require("admin")
def health() -> str:
    svc = services()
    checks: list[tuple[str, str]] = []
    for name, probe in (("Storage", svc.sessions.ping), ("Directory", svc.directory.check)):
        try:
            probe()
            checks.append((name, "ok"))
        except Exception as exc:  # noqa: BLE001 - shown as a state, never a trace
            checks.append((name, exc.reason if isinstance(exc, AuthgateError) else "error"))
    sinks = svc.audit.sink_health()
    return render_template("admin_health.html", session=g.session, checks=checks,
                           sinks=sinks, policy=svc.policies.current.digest)
