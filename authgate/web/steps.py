"""Helpers shared by the login, enrolment and account pages: the session, what step is
missing for the return URL, and moving on once a level is proven.

Views exempt from the single access decorator (style convention 12): the sign-in, factor and
enrolment views call ``require_session()`` (or ``current_session()``) instead of
``web.access.require``, because they run before a full login: the policy would send them
back to the login step they are part of. Passkey sign-in, password change, ``/verify`` and
the well-known endpoints take no session. The consoles and self-service use ``require``.
"""
from __future__ import annotations

import hashlib
from urllib.parse import quote

from flask import Response, abort, jsonify, redirect
from flask import session as page_session
from werkzeug.wrappers import Response as BaseResponse

from authgate.access.console_floor import console_floor
from authgate.access.next_step import Step, next_step, resource_of
from authgate.core.values import Resource, SessionRecord
from authgate.credentials.enrolment import EnrolPermit, FactorKind, may_enrol
from authgate.sessions.service import Issued
from authgate.web.access import portal_resource
from authgate.web.context import meta as meta  # re-exported: views import it from here
from authgate.web.context import remote_ip, request_id, services
from authgate.web.cookies import session_token, set_session_cookie


def current_session() -> SessionRecord | None:
    return services().sessions.resolve(session_token())


def require_session() -> SessionRecord:
    session = current_session()
    if session is None:
        abort(redirect("/login", code=303))
    return session


def target_of(rd: str) -> Resource:
    """The resource the user is heading for; the portal home when there is no ``rd``."""
    if rd:
        return resource_of(rd)
    home = portal_resource()
    return Resource(scheme=home.scheme, host=home.host, port=home.port, path="/",
                    method="GET")


def step_for(session: SessionRecord | None, rd: str) -> Step:
    """What is missing for ``rd``. Without one, the portal's home page: a signed-in user may
    always see their own status there, even where no rule covers the portal host."""
    svc = services()
    target = target_of(rd)
    step = next_step(svc.policies.current, session=session, target=target,
                     ip=remote_ip(), now=svc.clock.now(),
                     floor=console_floor(target, portal_host=portal_resource().host))
    if not rd and step is Step.DENIED and session is not None:
        return Step.DONE
    return step


def with_rd(path: str, rd: str) -> str:
    return f"{path}?rd={quote(rd, safe='')}" if rd else path


def challenge_key(session: SessionRecord, purpose: str) -> str:
    """Challenges are bound to the session that asked for them."""
    return hashlib.sha256(f"{session.id_hash}:{purpose}".encode()).hexdigest()


def next_redirect(issued: Issued, rd: str) -> BaseResponse:
    """A form's answer: on to ``/login/next`` with the new session cookie."""
    response = redirect(with_rd("/login/next", rd), code=303)
    set_session_cookie(response, issued.token)
    return response


def next_json(issued: Issued, rd: str) -> BaseResponse:
    """A WebAuthn script's answer: where to go next, with the new session cookie."""
    response = jsonify(ok=True, redirect=with_rd("/login/next", rd))
    set_session_cookie(response, issued.token)
    return response


def options_json(options: str) -> BaseResponse:
    """WebAuthn options (already JSON) for ``navigator.credentials.create`` or ``get``."""
    return Response(options, mimetype="application/json")


def refused_json(message: str, status: int) -> tuple[BaseResponse, int]:
    """A WebAuthn script's refusal: one generic message; the reason is in the audit log."""
    return jsonify(ok=False, error=message), status


#: the page-session key (Flask's signed cookie) holding the request ids of this browser's
#: failed sign-in steps since its last completed sign-in: its own typos (issue 17 item 2)
OWN_FAILURES = "own_failures"
_OWN_FAILURES_KEPT = 20


def remember_failure() -> None:
    """Note this request's failed sign-in step as this browser's own. The cookie is signed,
    so nobody can mark another browser's failures as theirs."""
    kept = [str(i) for i in page_session.get(OWN_FAILURES, [])][-(_OWN_FAILURES_KEPT - 1):]
    page_session[OWN_FAILURES] = [*kept, request_id()]


def take_own_failures() -> frozenset[str]:
    """This browser's failed steps, forgotten as the sign-in completes."""
    return frozenset(str(i) for i in page_session.pop(OWN_FAILURES, []))


def enrol_permit(session: SessionRecord, kind: FactorKind) -> EnrolPermit:
    """The enrolment rule (``credentials.enrolment.may_enrol``) with this request's facts."""
    svc = services()
    return may_enrol(kind=kind, session=session, now=svc.clock.now(),
                     policy=svc.policies.current.settings,
                     has_factors=svc.mfa.factors.has_factors(session.username), ip=remote_ip())
