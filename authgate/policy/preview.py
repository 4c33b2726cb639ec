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
from datetime import datetime, timedelta
from typing import Any

from authgate.core.values import Level
from authgate.policy.audited import AuditedDecision
from authgate.policy.engine import decide
from authgate.policy.preview_cache import DecisionCache, subject_and_resource
from authgate.policy.preview_report import ChangeGroup, PreviewPart, PreviewReport, Seen, iso
from authgate.policy.readiness import RaisedUse, raises
from authgate.policy.values import Decision, IPAddress, PolicySet, Verdict

#: the recorded outcome of a ``verify`` record → the engine's verdict
RECORDED = {"allow": Verdict.ALLOW, "challenge": Verdict.AUTHENTICATE, "deny": Verdict.DENY}
#: what a change means for the person, by the pending verdict
KIND = {Verdict.DENY: "loses_access", Verdict.AUTHENTICATE: "needs_step_up",
        Verdict.ALLOW: "gains_access"}
_CUT = "…"  # how AuditEvent marks a value it capped (core.values.neutralise)


def audited_decision(row: Mapping[str, Any], at: datetime) -> AuditedDecision | str:
    """A stored ``verify`` record (its columns by name, ``detail`` as stored JSON text) as
    an :class:`AuditedDecision`, or why it cannot be replayed faithfully: ``error`` (never
    decided), ``no_groups`` (written before records carried the session's groups),
    ``truncated`` (a value was capped), ``unreadable`` (a malformed field)."""
    return RecordReader().read(row, at)


class RecordReader:
    """``audited_decision`` for a stream of records: the values many records share (client
    addresses, group lists) are parsed once (bounded caches: memory stays flat)."""

    def __init__(self, *, limit: int = 50_000) -> None:
        self._limit = limit
        self._ips: dict[str, IPAddress | None] = {}
        self._groups: dict[str, frozenset[str]] = {}

    def read(self, row: Mapping[str, Any], at: datetime) -> AuditedDecision | str:
        return self.read_fields(row["id"], row["event"], row["outcome"], row["username"],
                                row["client_ip"], row["host"], row["path"], row["method"],
                                row["rule_id"], row["detail"], at)

    def read_fields(self, record_id: int, event: str, outcome: str, username: str,
                    client_ip: str, host: str, path: str, method: str, rule_id: str,
                    detail_text: str, at: datetime) -> AuditedDecision | str:
        """``read`` with the columns one by one (the bulk path: no mapping per row)."""
        verdict = RECORDED.get(outcome)
        if verdict is None or event != "verify":
            return "error"
        try:
            detail = json.loads(detail_text or "{}")
            ip = self._ip(client_ip)
        except ValueError:
            return "unreadable"
        text = detail_text or ""
        if (_CUT in path or _CUT in text or "\\u2026" in text) and any(
                str(v).endswith(_CUT) for v in (path, *detail.values())):
            return "truncated"
        user = username or None
        if user is not None and detail.get("as_anonymous") == "1":
            user = None
        if user is not None and "groups" not in detail:
            return "no_groups"
        try:
            level = Level(detail["level"]) if user else Level.NONE
            required = detail.get("required")
            return AuditedDecision(
                record_id=int(record_id), at=at, host=host, path=path, method=method,
                query=str(detail.get("query", "")), user=user,
                groups=self._group_set(detail["groups"]) if user else frozenset(),
                level=level, auth_age=_age(detail, "auth_age") if user else None,
                idle=_age(detail, "idle") if user else None, ip=ip, verdict=verdict,
                rule_id=None if rule_id in ("", "(default)") else rule_id,
                was_required=level if required is None else _required(required))
        except (ValueError, TypeError, KeyError):
            return "unreadable"

    def _ip(self, text: str) -> IPAddress | None:
        if text in self._ips:
            return self._ips[text]
        ip = ipaddress.ip_address(text) if text else None
        if len(self._ips) >= self._limit:
            self._ips.clear()
        self._ips[text] = ip
        return ip

    def _group_set(self, text: str) -> frozenset[str]:
        groups = self._groups.get(text)
        if groups is None:
            groups = frozenset(str(g) for g in json.loads(text))
            if len(self._groups) >= self._limit:
                self._groups.clear()
            self._groups[text] = groups
        return groups


def _age(detail: dict[str, Any], key: str) -> timedelta | None:
    return timedelta(seconds=int(detail[key])) if key in detail else None


def _required(text: str) -> Level | None:
    return None if text == "deny" else Level(text)


def replay(ps: PolicySet, d: AuditedDecision) -> Decision:
    """The pending set's decision for the same inputs (uncached: ``DecisionCache`` is the
    fast path, and must agree with this)."""
    subject, resource = subject_and_resource(d)
    return decide(ps, subject=subject, resource=resource, now=d.at)


class PreviewBuilder:
    """Feed it every audited decision (``add``) or the reason one was skipped (``skip``);
    ``report()`` at the end. ``samples`` bounds the sample requests kept per group."""

    def __init__(self, pending: PolicySet, *, samples: int = 3) -> None:
        self._ps = pending
        self._samples = samples
        self.part = PreviewPart()
        self._rules = {rule.id: rule for rule in pending.rules}
        self.cache = DecisionCache(pending)

    def skip(self, why: str) -> None:
        self.part.skipped[why] = self.part.skipped.get(why, 0) + 1

    def add(self, d: AuditedDecision) -> None:
        decision = self.cache.decide(d)
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
