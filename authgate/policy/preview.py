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
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from authgate.core.values import Level, Resource
from authgate.policy.engine import decide
from authgate.policy.values import IPAddress, PolicySet, Subject, Verdict

#: the recorded outcome of a ``verify`` record → the engine's verdict
RECORDED = {"allow": Verdict.ALLOW, "challenge": Verdict.AUTHENTICATE, "deny": Verdict.DENY}
#: what a change means for the person, by the pending verdict
KIND = {Verdict.DENY: "loses_access", Verdict.AUTHENTICATE: "needs_step_up",
        Verdict.ALLOW: "gains_access"}
_SAYS = {"loses_access": "would lose access", "needs_step_up": "would need to log in or step up",
         "gains_access": "would newly gain access"}
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
    return AuditedDecision(
        record_id=int(row["id"]), at=at, host=row["host"], path=row["path"],
        method=row["method"], query=str(detail.get("query", "")), user=user, groups=groups,
        level=Level(detail["level"]) if user else Level.NONE,
        auth_age=age("auth_age") if user else None, idle=age("idle") if user else None,
        ip=ip, verdict=verdict, rule_id=None if rule in ("", "(default)") else rule)


def replay(ps: PolicySet, d: AuditedDecision) -> tuple[Verdict, str | None, str, tuple[
        tuple[str, str], ...]]:
    """The pending set's (verdict, rule, reason, report-only outcomes) for the same inputs."""
    subject = Subject(
        username=d.user, groups=d.groups, level=d.level, ip=d.ip,
        auth_time=d.at - d.auth_age if d.auth_age is not None else None,
        last_seen=d.at - d.idle if d.idle is not None else None)
    resource = Resource("https", d.host, d.path, d.method, d.query)
    decision = decide(ps, subject=subject, resource=resource, now=d.at)
    return decision.verdict, decision.rule_id, decision.reason, decision.report_only


@dataclass
class Seen:
    """How often, and when first and last."""

    count: int = 0
    first: datetime | None = None
    last: datetime | None = None

    def add(self, at: datetime) -> None:
        self.count += 1
        self.first = at if self.first is None or at < self.first else self.first
        self.last = at if self.last is None or at > self.last else self.last

    def to_dict(self) -> dict[str, Any]:
        return {"count": self.count, "first": _iso(self.first), "last": _iso(self.last)}


@dataclass
class ChangeGroup:
    """Requests to one app whose verdict changes the same way under the same pending rule."""

    kind: str
    host: str
    rule_id: str | None  # the pending rule that decides; None: the default deny
    was: str  # the recorded verdict
    now: str  # the pending verdict
    seen: Seen = field(default_factory=Seen)
    samples: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "host": self.host, "rule": self.rule_id or "default",
                "was": self.was, "now": self.now, **self.seen.to_dict(),
                "samples": self.samples}


@dataclass(frozen=True)
class PreviewReport:
    """What a reviewer reads before approving ``digest`` (``to_dict`` for ``--json``)."""

    digest: str
    replayed: int
    unchanged: int
    skipped: dict[str, int]
    groups: tuple[ChangeGroup, ...]
    users: dict[str, dict[str, Seen]]  # kind → user → seen
    report_only: dict[tuple[str, str], Seen]

    @property
    def changed(self) -> int:
        return self.replayed - self.unchanged

    def to_dict(self) -> dict[str, Any]:
        return {
            "policy_digest": self.digest, "replayed": self.replayed, "changed": self.changed,
            "unchanged": self.unchanged, "skipped": dict(sorted(self.skipped.items())),
            "groups": [g.to_dict() for g in self.groups],
            "users": {kind: {user: seen.to_dict() for user, seen in sorted(users.items())}
                      for kind, users in sorted(self.users.items())},
            "report_only": [{"rule": rule, "would": would, **seen.to_dict()}
                            for (rule, would), seen in sorted(self.report_only.items())],
        }

    def lines(self) -> list[str]:
        """A readable table: totals, the changed groups, the users, report-only outcomes."""
        skipped = ", ".join(f"{k} {n}" for k, n in sorted(self.skipped.items())) or "none"
        out = [f"pending policy {self.digest[:16]}: {self.replayed} decisions replayed, "
               f"{self.changed} would change, {self.unchanged} unchanged; "
               f"not replayable: {skipped}"]
        if self.groups:
            out.append(f"{'change':<14} {'app':<28} {'rule':<28} {'was→now':<22} "
                       f"{'requests':>8}  first / last seen")
        for g in self.groups:
            out.append(f"{g.kind:<14} {g.host:<28} {g.rule_id or 'default':<28} "
                       f"{g.was + '→' + g.now:<22} {g.seen.count:>8}  "
                       f"{_iso(g.seen.first)} / {_iso(g.seen.last)}")
            out.extend(f"    e.g. {_sample_text(s)}" for s in g.samples)
        for kind, users in sorted(self.users.items()):
            names = ", ".join(f"{u} ({s.count})" for u, s in sorted(users.items()))
            out.append(f"users who {_SAYS[kind]}: {names}")
        out.extend(f"report-only {rule}: {would} x{seen.count}"
                   for (rule, would), seen in sorted(self.report_only.items()))
        return out


class PreviewBuilder:
    """Feed it every audited decision (``add``) or the reason one was skipped (``skip``);
    ``report()`` at the end. ``samples`` bounds the sample requests kept per group."""

    def __init__(self, pending: PolicySet, *, samples: int = 3) -> None:
        self._ps = pending
        self._samples = samples
        self._replayed = self._unchanged = 0
        self._skipped: dict[str, int] = {}
        self._groups: dict[tuple[str, str | None, str, str], ChangeGroup] = {}
        self._users: dict[str, dict[str, Seen]] = {}
        self._report_only: dict[tuple[str, str], Seen] = {}

    def skip(self, why: str) -> None:
        self._skipped[why] = self._skipped.get(why, 0) + 1

    def add(self, d: AuditedDecision) -> None:
        verdict, rule_id, reason, reported = replay(self._ps, d)
        self._replayed += 1
        for entry in reported:
            self._report_only.setdefault(entry, Seen()).add(d.at)
        if verdict is d.verdict:
            self._unchanged += 1
            return
        kind = KIND[verdict]
        key = (d.host, rule_id, d.verdict.value, verdict.value)
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = ChangeGroup(kind, d.host, rule_id, d.verdict.value,
                                                    verdict.value)
        group.seen.add(d.at)
        if len(group.samples) < self._samples:
            group.samples.append(_sample(d, reason))
        if d.user is not None:
            self._users.setdefault(kind, {}).setdefault(d.user, Seen()).add(d.at)

    def add_all(self, items: Iterable[AuditedDecision | str]) -> PreviewBuilder:
        for item in items:
            if isinstance(item, str):
                self.skip(item)
            else:
                self.add(item)
        return self

    def report(self) -> PreviewReport:
        groups = sorted(self._groups.values(), key=lambda g: (g.kind, g.host,
                                                              g.rule_id or "", g.was))
        return PreviewReport(self._ps.digest, self._replayed, self._unchanged,
                             dict(self._skipped), tuple(groups), self._users,
                             self._report_only)


def _sample(d: AuditedDecision, reason: str) -> dict[str, Any]:
    return {"record_id": d.record_id, "at": _iso(d.at), "user": d.user, "method": d.method,
            "host": d.host, "path": d.path, "ip": str(d.ip) if d.ip else None,
            "was_rule": d.rule_id or "default", "reason": reason}


def _sample_text(s: dict[str, Any]) -> str:
    return (f"#{s['record_id']} {s['at']} {s['user'] or '(anonymous)'} {s['method']} "
            f"{s['host']}{s['path']} from {s['ip'] or '-'} (was {s['was_rule']}; now "
            f"{s['reason']})")


def _iso(when: datetime | None) -> str | None:
    return when.isoformat(timespec="seconds") if when is not None else None
