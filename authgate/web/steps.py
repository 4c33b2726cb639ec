"""Helpers shared by the login, enrolment and account pages."""
from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from urllib.parse import quote

from flask import abort, redirect
from werkzeug.wrappers import Response as BaseResponse

from authgate.access.next_step import Step, next_step, resource_of
from authgate.core.values import Level, RequestMeta, Resource, SessionRecord
from authgate.web.access import portal_resource
from authgate.web.context import remote_ip, remote_ip_text, request_id, services, user_agent
from authgate.web.cookies import session_token, set_session_cookie

ENROL_WINDOW = timedelta(minutes=15)


def meta() -> RequestMeta:
    return RequestMeta(client_ip=remote_ip_text(), user_agent=user_agent(),
                       request_id=request_id())


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
    step = next_step(svc.policies.current, session=session, target=target_of(rd),
                     ip=remote_ip(), now=svc.clock.now())
    if not rd and step is Step.DENIED and session is not None:
        return Step.DONE
    return step


def with_rd(path: str, rd: str) -> str:
    return f"{path}?rd={quote(rd, safe='')}" if rd else path


def challenge_key(session: SessionRecord, purpose: str) -> str:
    """Challenges are bound to the session that asked for them."""
    return hashlib.sha256(f"{session.id_hash}:{purpose}".encode()).hexdigest()


def raise_level(session: SessionRecord, level: Level, rd: str, *,
                as_json: bool = False) -> BaseResponse:
    """Record the proven level under a new session id (ASVS 3.2.1) and move on."""
    svc = services()
    keep = level if level.rank > session.level.rank else session.level
    issued = svc.sessions.elevate(session, level=keep)
    if issued is None:
        abort(redirect("/login", code=303))
    target = with_rd("/login/next", rd)
    response: BaseResponse
    if as_json:
        from flask import jsonify

        response = jsonify(ok=True, redirect=target)
    else:
        response = redirect(target, code=303)
    set_session_cookie(response, issued.token)
    return response


def may_enrol(session: SessionRecord, now: datetime) -> bool:
    """NIST 63B 6.1.2.1: bind a new authenticator only after an admin code (this session),
    or with a fresh login at mfa or above, or from a first-enrolment network if the policy
    names one and the user has no factor yet."""
    svc = services()
    until = session.data.get("enrol_until", "")
    if until and datetime.fromisoformat(until) > now:
        return True
    settings = svc.policies.current.settings
    has_factors = svc.mfa.factors.has_factors(session.username)
    fresh = now - session.auth_time <= settings.enrolment.fresh_auth_for_new_factor
    if has_factors:
        return session.level.satisfies(Level.MFA) and fresh
    ip = remote_ip()
    for name in settings.enrolment.first_enrolment_networks:
        if ip is not None and any(ip in net for net in settings.networks.get(name, ())):
            return True
    return False
