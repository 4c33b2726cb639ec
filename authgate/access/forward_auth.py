"""Forward-auth: one request to a protected app → allow, log in / step up, or deny.

request → trusted-proxy check → resource → session → subject → ``policy.decide`` (pure) →
one audit record → verdict. "An error can never result in an authenticated user"
(Authelia's creed): every failure on this path becomes a 401/403, audited as an error.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from authgate.access.proxy_headers import IPAddress
from authgate.audit import AuditLog
from authgate.core.clock import Clock
from authgate.core.values import AuditEvent, Level, Outcome, Resource, SessionRecord
from authgate.policy import Decision, Subject, Verdict, decide
from authgate.policy.live import PolicyRuntime
from authgate.sessions.service import SessionService


@dataclass(frozen=True)
class AccessRequest:
    resource: Resource
    token: str | None
    client_ip: IPAddress | None
    user_agent: str
    request_id: str


@dataclass(frozen=True)
class AccessAnswer:
    verdict: Verdict
    decision: Decision
    #: the session whose identity may be sent on: ``None`` when the policy judged the
    #: request anonymous (no session, or a break-glass session still short of WebAuthn)
    session: SessionRecord | None


class ForwardAuth:
    def __init__(self, *, policies: PolicyRuntime, sessions: SessionService, audit: AuditLog,
                 clock: Clock) -> None:
        self._policies = policies
        self._sessions = sessions
        self._audit = audit
        self._clock = clock

    def decide(self, request: AccessRequest) -> AccessAnswer:
        """Decide and audit. Raises only if the audit write fails (the caller denies)."""
        policy_set = self._policies.current
        session = self._sessions.resolve(request.token)
        now = self._clock.now()
        subject = subject_of(session, request.client_ip)
        decision = decide(policy_set, subject=subject, resource=request.resource, now=now)
        self._audit.record(_event(request, decision, session, policy_set.digest,
                                  replay=replay_detail(subject, request.resource, now),
                                  as_anonymous=session is not None and subject.anonymous))
        # identity headers only for a subject the policy judged as signed in: a session it
        # treated as anonymous (a break-glass password before WebAuthn) asserts no one
        return AccessAnswer(decision.verdict, decision,
                            None if subject.anonymous else session)


def break_glass_pending(session: SessionRecord) -> bool:
    """A break-glass account opens nothing until WebAuthn with user verification."""
    return session.source == "break_glass" and session.level is not Level.PHISHING_RESISTANT


def subject_of(session: SessionRecord | None, ip: IPAddress | None) -> Subject:
    if session is None or break_glass_pending(session):
        return Subject(ip=ip)  # a break-glass password alone opens nothing
    return Subject(username=session.username, groups=session.groups, level=session.level,
                   auth_time=session.auth_time, last_seen=session.last_seen, ip=ip)


#: ``json.dumps(groups, ensure_ascii=False)``, without building an encoder per request
_GROUPS_JSON = json.JSONEncoder(ensure_ascii=False)
_OUTCOME = {Verdict.ALLOW: Outcome.ALLOW, Verdict.AUTHENTICATE: Outcome.CHALLENGE,
            Verdict.DENY: Outcome.DENY}


def replay_detail(subject: Subject, resource: Resource, now: datetime
                  ) -> tuple[tuple[str, str], ...]:
    """What a replay of this decision needs beyond the record's own fields (issue 19 item 1,
    ``authgate policy preview``): the subject's groups (a JSON list: names may hold commas),
    how long ago its level was proven and its previous activity (whole seconds), the query
    (``match_query`` rules), and whether a session was judged anonymous (break-glass before
    WebAuthn). Each value is capped at 512 characters like all detail; a capped one ends in
    "…" and the preview counts that record as not replayable rather than guess."""
    out: list[tuple[str, str]] = []
    if resource.query:
        out.append(("query", resource.query))
    if subject.anonymous:
        return tuple(out)
    out.append(("groups", _GROUPS_JSON.encode(sorted(subject.groups))))
    for key, then in (("auth_age", subject.auth_time), ("idle", subject.last_seen)):
        if then is not None:
            out.append((key, str(int((now - then).total_seconds()))))
    return tuple(out)


def _event(request: AccessRequest, decision: Decision, session: SessionRecord | None,
           digest: str, *, replay: tuple[tuple[str, str], ...],
           as_anonymous: bool) -> AuditEvent:
    r = request.resource
    level = (("level", session.level.value),) if session else ()
    # what the rule required (``deny``: nothing sufficed): readiness sees a raised level
    required = (("required", decision.required.value if decision.required else "deny"),) \
        if session else ()
    anonymous = (("as_anonymous", "1"),) if as_anonymous else ()
    reported = (("report_only", ",".join(f"{rule}:{would}" for rule, would
                                         in decision.report_only)),) \
        if decision.report_only else ()
    return AuditEvent(
        event="verify", outcome=_OUTCOME[decision.verdict], reason=decision.reason,
        username=session.username if session else "",
        client_ip=str(request.client_ip or ""), user_agent=request.user_agent,
        host=r.host, path=r.path, method=r.method, rule_id=decision.rule_id or "(default)",
        policy_digest=digest, request_id=request.request_id,
        detail=(*level, *required, *anonymous, *replay, *reported),
    )


def error_event(*, reason: str, request_id: str, client_ip: str, user_agent: str,
                resource: Resource | None, digest: str,
                raw: tuple[tuple[str, str], ...] = ()) -> AuditEvent:
    """The record for a /verify request that could not be decided (always a refusal).
    Without a parsed resource, ``raw`` keeps what the proxy said (host, URI, method), cut
    and neutralised like every field, so an investigator still sees what was attempted."""
    return AuditEvent(
        event="verify", outcome=Outcome.ERROR, reason=reason, client_ip=client_ip,
        user_agent=user_agent, host=resource.host if resource else "",
        path=resource.path if resource else "", method=resource.method if resource else "",
        rule_id="", policy_digest=digest, request_id=request_id,
        detail=() if resource else raw,
    )
