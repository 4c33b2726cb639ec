"""Policy change preview (issue 19 item 1): replay audited ``/verify`` decisions under a
pending policy set and report who would gain, lose or need a step-up, before approval.

Pure, like the engine (Flask's ``sansio`` rule): records in, a report out; no I/O, no clock.
The caller streams the records (``authgate policy preview`` reads them from the audit
store a batch at a time) into a :class:`PreviewBuilder`, whose memory grows with the number
of (rule, app, change) groups and of affected users, never with the number of records.
The replay is as faithful as the record: see docs/policies.md, Preview, for what an older
record cannot replay.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from authgate.core.values import Level, Resource
from authgate.policy.engine import decide
from authgate.policy.preview_report import ChangeGroup, PreviewPart, PreviewReport, Seen, iso
from authgate.policy.readiness import RaisedUse, raises
from authgate.policy.values import Decision, IPAddress, PolicySet, Subject, Verdict

#: the recorded outcome of a ``verify`` record → the engine's verdict
RECORDED = {"allow": Verdict.ALLOW, "challenge": Verdict.AUTHENTICATE, "deny": Verdict.DENY}
#: what a change means for the person, by the pending verdict
KIND = {Verdict.DENY: "loses_access", Verdict.AUTHENTICATE: "needs_step_up",
        Verdict.ALLOW: "gains_access"}
_CUT = "…"  # how AuditEvent marks a value it capped (core.values.neutralise)


@dataclass(frozen=True)
class AuditedDecision:
    """One audited ``/verify`` decision, with what the engine needs to decide it again."""

    record_id: int
    at: datetime
    host: str
    path: str
    method: str
    query: str
    user: str | None  # None: the request was judged anonymous
    groups: frozenset[str]
    level: Level
    auth_age: timedelta | None
    idle: timedelta | None
    ip: IPAddress | None
    verdict: Verdict  # as recorded
    rule_id: str | None  # as recorded; None for the default deny
    #: the level the deciding rule required then (None: it denied); records before it was
    #: recorded give the level the session held (readiness: a raise above it)
    was_required: Level | None = None


def audited_decision(row: Mapping[str, Any], at: datetime) -> AuditedDecision | str:
    """A stored ``verify`` record (its columns by name, ``detail`` as stored JSON text) as
    an :class:`AuditedDecision`, or why it cannot be replayed faithfully: ``error`` (never
    decided), ``no_groups`` (written before records carried the session's groups),
    ``truncated`` (a value was capped), ``unreadable`` (a malformed field)."""
    verdict = RECORDED.get(row["outcome"])
    if verdict is None or row["event"] != "verify":
        return "error"
    try:
        detail = json.loads(row["detail"] or "{}")
        ip = ipaddress.ip_address(row["client_ip"]) if row["client_ip"] else None
    except ValueError:
        return "unreadable"
    if any(str(v).endswith(_CUT) for v in (row["path"], *detail.values())):
        return "truncated"
    user = row["username"] or None
    if user is not None and detail.get("as_anonymous") == "1":
        user = None
    if user is not None and "groups" not in detail:
        return "no_groups"
    try:
        return _decision(row, detail, at=at, user=user, ip=ip, verdict=verdict)
    except (ValueError, TypeError, KeyError):
        return "unreadable"


def _decision(row: Mapping[str, Any], detail: dict[str, Any], *, at: datetime,
              user: str | None, ip: IPAddress | None, verdict: Verdict) -> AuditedDecision:
    def age(key: str) -> timedelta | None:
        return timedelta(seconds=int(detail[key])) if key in detail else None

    groups = frozenset(str(g) for g in json.loads(detail["groups"])) if user else frozenset()
    rule = row["rule_id"]
    level = Level(detail["level"]) if user else Level.NONE
    required = detail.get("required")
    return AuditedDecision(
        record_id=int(row["id"]), at=at, host=row["host"], path=row["path"],
        method=row["method"], query=str(detail.get("query", "")), user=user, groups=groups,
        level=level, auth_age=age("auth_age") if user else None,
        idle=age("idle") if user else None, ip=ip, verdict=verdict,
        rule_id=None if rule in ("", "(default)") else rule,
        was_required=level if required is None else _required(required))


def _required(text: str) -> Level | None:
    return None if text == "deny" else Level(text)


def replay(ps: PolicySet, d: AuditedDecision) -> Decision:
    """The pending set's decision for the same inputs."""
    subject = Subject(
        username=d.user, groups=d.groups, level=d.level, ip=d.ip,
        auth_time=d.at - d.auth_age if d.auth_age is not None else None,
        last_seen=d.at - d.idle if d.idle is not None else None)
    resource = Resource("https", d.host, d.path, d.method, d.query)
    return decide(ps, subject=subject, resource=resource, now=d.at)


class PreviewBuilder:
    """Feed it every audited decision (``add``) or the reason one was skipped (``skip``);
    ``report()`` at the end. ``samples`` bounds the sample requests kept per group."""

    def __init__(self, pending: PolicySet, *, samples: int = 3) -> None:
        self._ps = pending
        self._samples = samples
        self.part = PreviewPart()
        self._rules = {rule.id: rule for rule in pending.rules}

    def skip(self, why: str) -> None:
        self.part.skipped[why] = self.part.skipped.get(why, 0) + 1

    def add(self, d: AuditedDecision) -> None:
        decision = replay(self._ps, d)
        part = self.part
        part.replayed += 1
        for entry in decision.report_only:
            part.report_only.setdefault(entry, Seen()).add(d.at)
        if d.user is not None:
            self._note_raised(d, decision)
        verdict = decision.verdict
        if verdict is d.verdict:
            part.unchanged += 1
            return
        kind = KIND[verdict]
        key = (d.host, decision.rule_id, d.verdict.value, verdict.value)
        group = part.groups.get(key)
        if group is None:
            group = part.groups[key] = ChangeGroup(kind, d.host, decision.rule_id,
                                                   d.verdict.value, verdict.value)
        group.seen.add(d.at)
        if len(group.samples) < self._samples:
            group.samples.append(_sample(d, decision.reason))
        if d.user is not None:
            part.users.setdefault(kind, {}).setdefault(d.user, Seen()).add(d.at)

    def _note_raised(self, d: AuditedDecision, decision: Decision) -> None:
        """Readiness (item 2): the deciding rule and each matching report-only rule that
        would need more than was required then, and a credential to reach it."""
        assert d.user is not None
        wanted = [(decision.rule_id, decision.required)] if decision.rule_id else []
        for rule_id, _would in decision.report_only:
            wanted.append((rule_id, self._rules[rule_id].level.level))
        for rule_id, level in wanted:
            if level is None or rule_id is None or not raises(was=d.was_required, now=level):
                continue
            use = self.part.raised.get(rule_id)
            if use is None:
                use = self.part.raised[rule_id] = RaisedUse(
                    rule_id, level, self._rules[rule_id].report_only)
            use.add(d.host, d.user, d.at)

    def add_all(self, items: Iterable[AuditedDecision | str]) -> PreviewBuilder:
        for item in items:
            if isinstance(item, str):
                self.skip(item)
            else:
                self.add(item)
        return self

    def report(self) -> PreviewReport:
        return PreviewReport.of(self._ps.digest, self.part)


def _sample(d: AuditedDecision, reason: str) -> dict[str, Any]:
    return {"record_id": d.record_id, "at": iso(d.at), "user": d.user, "method": d.method,
            "host": d.host, "path": d.path, "ip": str(d.ip) if d.ip else None,
            "was_rule": d.rule_id or "default", "reason": reason}
