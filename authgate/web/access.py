"""Access to authgate's own pages (auditor and admin consoles, self-service).

These pages are served by the portal itself, not through ``/verify``, so the same policy is
applied here: the request is turned into a ``Resource`` on the portal's public URL and
``policy.decide`` rules on it, after the role check (ASVS 4.3.1 admin MFA, 4.3.3 separation
of duties). One decorator per view.
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import timedelta
from typing import Any, Literal, TypeVar
from urllib.parse import quote, urlsplit

from flask import abort, g, redirect, request

from authgate.access.console_floor import console_floor
from authgate.access.forward_auth import subject_of
from authgate.core.values import AuditEvent, Outcome, Resource, SessionRecord
from authgate.policy import Verdict, decide
from authgate.web.context import (
    record_sampled,
    remote_ip,
    remote_ip_text,
    request_id,
    services,
    user_agent,
)
from authgate.web.cookies import session_token

F = TypeVar("F", bound=Callable[..., Any])
Role = Literal["admin", "auditor", "self"]
#: a change on the admin console needs a login at most this old, else the admin signs in
#: again (ASVS 3.7.1); fixed, not a policy setting
ADMIN_CHANGE_FRESHNESS = timedelta(minutes=15)


def portal_resource() -> Resource:
    """This request as a resource on the portal's public URL (never the client's Host)."""
    base = urlsplit(services().settings.server.public_url)
    return Resource(scheme=base.scheme, host=(base.hostname or "").lower(), port=base.port,
                    path=request.path, query=request.query_string.decode("latin-1"),
                    method=request.method)


def login_redirect(resource: Resource) -> Any:
    return redirect("/login?rd=" + quote(resource.url, safe=""), code=303)


def has_role(session: SessionRecord, role: Role) -> bool:
    if role == "self":
        return True
    roles = services().policies.current.settings.roles
    groups = roles.admin_groups if role == "admin" else roles.auditor_groups
    return bool(groups & session.groups)


def require(role: Role) -> Callable[[F], F]:
    """Signed in, holding ``role``, and allowed by the policy at the level it demands."""
    def decorator(view: F) -> F:
        @functools.wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            svc = services()
            session = svc.sessions.resolve(session_token())
            resource = portal_resource()
            if session is None:
                _audit_challenge(None, resource, "login_required")
                return login_redirect(resource)
            if not has_role(session, role):
                _audit_refusal(session, resource, f"{role}_role_missing", "")
                abort(403)
            policy_set = svc.policies.current
            decision = decide(policy_set, subject=subject_of(session, remote_ip()),
                              resource=resource, now=svc.clock.now())
            if decision.verdict is Verdict.AUTHENTICATE:
                _audit_challenge(session, resource, decision.reason)
                return login_redirect(resource)
            if decision.verdict is Verdict.DENY:
                _audit_refusal(session, resource, decision.reason, decision.rule_id or "")
                abort(403)
            floor = console_floor(resource, portal_host=resource.host)
            if floor is not None and not session.level.satisfies(floor):
                _audit_challenge(session, resource, "step_up")
                return login_redirect(resource)  # the login flow asks for the floor
            g.session = session
            return view(*args, **kwargs)
        return wrapped  # type: ignore[return-value]
    return decorator


def _audit_challenge(session: SessionRecord | None, resource: Resource, reason: str) -> None:
    """A console visit sent to sign in or step up: audited as /verify audits its challenges;
    one without a session names no account, so it is recorded up to its address's rate."""
    event = AuditEvent(
        event="console.access", outcome=Outcome.CHALLENGE, reason=reason,
        username=session.username if session else "", client_ip=remote_ip_text(),
        user_agent=user_agent(), host=resource.host, path=resource.path,
        method=resource.method, policy_digest=services().policies.current.digest,
        request_id=request_id())
    if session is None:
        record_sampled(event)
    else:
        services().audit.record(event)


def _audit_refusal(session: SessionRecord, resource: Resource, reason: str, rule: str) -> None:
    services().audit.record(AuditEvent(
        event="console.access", outcome=Outcome.DENY, reason=reason, username=session.username,
        client_ip=remote_ip_text(), user_agent=user_agent(), host=resource.host,
        path=resource.path, method=resource.method, rule_id=rule,
        policy_digest=services().policies.current.digest, request_id=request_id()))
