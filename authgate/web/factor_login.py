"""The steps after the password: the factor the target's rule requires, and step-up.

``/login/next`` asks the policy what the session still lacks for ``rd`` and offers exactly
that: ``mfa`` → TOTP, WebAuthn or a recovery code; ``phishing_resistant`` → WebAuthn with
user verification only (NIST 63B 4.3.2: a typed code never qualifies).
"""
from __future__ import annotations

from collections.abc import Callable

from flask import Blueprint, redirect, render_template, request
from flask import session as page_session
from werkzeug.wrappers import Response as BaseResponse

from authgate.access.next_step import Step
from authgate.core.values import AuditEvent, Outcome, SessionRecord
from authgate.credentials.enrolment import fresh_strong_login
from authgate.factors.errors import CodeReplayed, FactorError
from authgate.login.second_factor import SessionGone, StepRefused
from authgate.sessions.history import complete_sign_in
from authgate.sessions.service import Issued
from authgate.web.context import meta, rd_param, services
from authgate.web.steps import (
    challenge_key,
    enrol_permit,
    next_json,
    next_redirect,
    options_json,
    refused_json,
    remember_failure,
    require_session,
    step_for,
    take_own_failures,
    with_rd,
)

bp = Blueprint("factor", __name__)
GENERIC = "That code was not accepted. Check it and try again."
#: a right code already used: after the password step, saying so helps (issue 17 item 6)
REPLAYED = ("That code was not accepted: it was already used. Wait for the next code in "
            "your app (a new one appears every 30 seconds) and type that one.")
_KEY_REFUSED = ("The security key was not accepted. Try again with a key registered to your "
                "account, or use another of your sign-in devices.")
#: session data: this session's sign-in is complete (recorded once, ``sessions.history``)
SIGNED_IN = "signed_in"
#: page-session key: recovery codes left after a recovery-code sign-in (shown on arrival)
RECOVERY_LEFT = "recovery_left"
#: at or below this many codes left, the arrival page offers new ones (issue 17 item 7)
FEW_RECOVERY_CODES = 3


@bp.get("/login/next")
def next_page() -> BaseResponse | str | tuple[str, int]:
    session = require_session()
    rd = rd_param()
    step = step_for(session, rd)
    fresh = step is Step.DONE and _fresh_wanted(session)
    if fresh:
        step = Step.MFA
    if step is Step.DONE:
        return _arrive(session, rd)
    if step is Step.DENIED:
        _audit_factor_refusal(session, "denied_by_rule", event="login.next")
        return render_template("message.html", title="Not allowed",
                               message="Your account may not open this application. If you "
                               "need it, ask your manager or the IT service desk."), 403
    if step is Step.PASSWORD:
        return redirect(with_rd("/login", rd), code=303)
    summary = services().mfa.factors.summary(session.username)
    if not summary.active:
        return redirect(with_rd("/enrol", rd), code=303)
    return _factor_page(session, rd, step, error=None, fresh=fresh)


def _fresh_wanted(session: SessionRecord) -> bool:
    """``fresh=1``: adding a device to an account that has one needs a fresh login at
    ``mfa`` (ASVS 3.7.1, NIST 63B 6.1.2.1; ``credentials.enrolment.may_enrol``), which the
    policy of the page asking (``/enrol``) does not demand; a factor proven here renews it
    (``sessions.elevate``). Asks only for more, never less."""
    if request.args.get("fresh") != "1":
        return False
    svc = services()
    return not fresh_strong_login(
        session, now=svc.clock.now(),
        within=svc.policies.current.settings.enrolment.fresh_auth_for_new_factor)


def _factor_page(session: SessionRecord, rd: str, step: Step, *, error: str | None,
                 status: int = 200, fresh: bool = False) -> tuple[str, int]:
    summary = services().mfa.factors.summary(session.username)
    strong = step is Step.PHISHING_RESISTANT
    return render_template(
        "factor.html", session=session, rd=rd, strong=strong, error=error, fresh=fresh,
        totp=summary.has_totp and not strong, webauthn=summary.has_webauthn,
        recovery=summary.recovery_codes_left > 0 and not strong,
        may_add_key=strong and enrol_permit(session, "webauthn").allowed), status


def _arrive(session: SessionRecord, rd: str) -> BaseResponse | str:
    """Done. The first arrival of a session completes its sign-in (``sessions.history``):
    failures since the previous completion that this browser did not make are shown once
    (ASVS 2.2.3), and so is what is left after a recovery-code sign-in."""
    svc = services()
    if session.data.get(SIGNED_IN):
        return redirect(rd or "/", code=303)
    check = complete_sign_in(svc.audit_store, svc.audit, username=session.username,
                             level=session.level.value, own_request_ids=take_own_failures(),
                             now=svc.clock.now(), meta=meta())
    svc.sessions.annotate(session, **{SIGNED_IN: "1"})
    left = page_session.pop(RECOVERY_LEFT, None)
    if check.failures or left is not None:
        return render_template("welcome.html", session=session, check=check,
                               recovery_left=left, few=FEW_RECOVERY_CODES, rd=rd,
                               continue_url=rd or "/")
    return redirect(rd or "/", code=303)


def _strong_needed(session: SessionRecord, rd: str) -> bool:
    return step_for(session, rd) is Step.PHISHING_RESISTANT


def _audit_factor_refusal(session: SessionRecord, reason: str, *,
                          event: str = "login.factor") -> None:
    """A step refused before anything was checked (the target needs a key, the user is
    throttled, or the policy refuses the target): audited like every other refusal."""
    services().audit.record(AuditEvent.for_request(
        meta(), event, Outcome.FAILURE, reason, username=session.username,
        target=rd_param()[:256]))


@bp.post("/login/totp")
def totp_submit() -> BaseResponse | tuple[str, int]:
    """The whole step (throttle, check, session raised, audit) is one transaction
    (``login.second_factor``)."""
    return _typed_code(lambda session, code: services().factor_login.totp(
        session=session, code=code, meta=meta()))


@bp.post("/login/recovery")
def recovery_submit() -> BaseResponse | tuple[str, int]:
    """A reservation, the argon2 check outside any transaction, then one transaction for
    every write of an accepted code (``login.recovery_step``). How many codes are left is
    shown on arrival."""
    def step(session: SessionRecord, code: str) -> Issued:
        spent = services().recovery_login.recovery(session=session, code=code, meta=meta())
        page_session[RECOVERY_LEFT] = spent.remaining
        return spent.issued

    return _typed_code(step)


def _typed_code(step: Callable[[SessionRecord, str], Issued]
                ) -> BaseResponse | tuple[str, int]:
    """A typed code: never enough for ``phishing_resistant`` (NIST 63B 4.3.2), throttled
    per user, one generic message for every failure."""
    session = require_session()
    rd = rd_param()
    if _strong_needed(session, rd):
        _audit_factor_refusal(session, "strong_factor_required")
        return _factor_page(session, rd, step_for(session, rd), error=GENERIC, status=401)
    try:
        issued = step(session, request.form.get("code", ""))
    except StepRefused:  # audited by the step, once, with the request id
        return _factor_page(session, rd, step_for(session, rd), error=GENERIC, status=401)
    except SessionGone:
        return redirect("/login", code=303)
    except FactorError as exc:
        return _code_refused(session, rd, exc)
    return next_redirect(issued, rd)


def _code_refused(session: SessionRecord, rd: str, exc: FactorError) -> tuple[str, int]:
    """A wrong or replayed code: one generic message (the replay's own wording only after
    the password step, issue 17 item 6); the reason is in the audit log."""
    remember_failure()
    return _factor_page(session, rd, Step.MFA, status=401,
                        error=REPLAYED if isinstance(exc, CodeReplayed) else GENERIC,
                        fresh=request.form.get("fresh") == "1")  # the wording only


@bp.post("/login/webauthn/options")
def webauthn_options() -> BaseResponse:
    session = require_session()
    strong = _strong_needed(session, rd_param())
    options = services().mfa.webauthn.begin_authentication(
        key=challenge_key(session, "login"), username=session.username, require_uv=strong)
    return options_json(options)


@bp.post("/login/webauthn/verify")
def webauthn_verify() -> BaseResponse | tuple[BaseResponse, int]:
    """The whole step (throttle, challenge, assertion, sign count, session raised, audit)
    is one transaction (``login.key_step``); one generic refusal, the reason audited."""
    session = require_session()
    rd = rd_param()
    try:
        issued = services().key_login.verify(
            session=session, challenge_key=challenge_key(session, "login"),
            credential_json=request.get_data(as_text=True),
            require_uv=_strong_needed(session, rd), meta=meta())
    except StepRefused:
        return refused_json(_KEY_REFUSED, 401)
    except SessionGone:
        return redirect("/login", code=303)
    except FactorError:
        remember_failure()
        return refused_json(_KEY_REFUSED, 401)
    return next_json(issued, rd)
