"""Why a request got its decision: for each rule before the match, the criterion that failed.

A reviewer reads this before approving a change (and an operator when a user is refused), so
it must never disagree with :func:`decide`: the decision itself comes from ``decide`` and the
trace uses the same criterion predicates, walking every rule rather than the host index.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from authgate.core.values import Resource
from authgate.policy import engine
from authgate.policy.values import Decision, PolicySet, Rule, Subject


@dataclass(frozen=True)
class RuleTrace:
    """One rule as evaluated: matched, or the failed criteria (``failed``); ``would`` is
    what a matched report-only rule would have answered (``would_deny``, ...), else ""."""

    rule_id: str
    source: str
    matched: bool
    failed: tuple[str, ...]
    would: str = ""


@dataclass(frozen=True)
class Explanation:
    decision: Decision
    trace: tuple[RuleTrace, ...]  # rules up to and including the deciding one
    path: str  # the normalised path the rules saw
    digest: str

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values (``authgate policy explain --json``)."""
        d = self.decision
        return {
            "verdict": d.verdict.value,
            "reason": d.reason,
            "rule": d.rule_id,
            "required": d.required.value if d.required else None,
            "max_session_age": d.max_session_age.total_seconds() if d.max_session_age else None,
            "idle_timeout": d.idle_timeout.total_seconds() if d.idle_timeout else None,
            "reasons": list(d.reasons),
            "normalized_path": self.path,
            "policy_digest": self.digest,
            "report_only": [{"rule": rule_id, "would": would}
                            for rule_id, would in d.report_only],
            "rules": [
                {
                    "id": t.rule_id,
                    "source": t.source,
                    "matched": t.matched,
                    "failed": list(t.failed),
                    "report_only": t.would or None,
                }
                for t in self.trace
            ],
        }

    def lines(self) -> list[str]:
        """Human-readable lines, one per evaluated rule, then the decision."""
        out = [f"policy {self.digest[:16]}  path seen by rules: {self.path}"]
        for t in self.trace:
            status = "REPORT" if t.would else ("MATCH" if t.matched else "skip ")
            detail = f"  report-only: {t.would}, not deciding" if t.would else (
                "" if t.matched else "  " + "; ".join(t.failed))
            out.append(f"  {status} {t.rule_id} ({t.source}){detail}")
        d = self.decision
        required = d.required.value if d.required else "-"
        out.append(
            f"decision: {d.verdict.value} ({d.reason}), rule {d.rule_id or 'default-deny'}, "
            f"required level {required}"
        )
        out.extend(f"  {line}" for line in d.reasons)
        out.extend(f"report-only: rule {rule_id} {would}" for rule_id, would in d.report_only)
        return out


def explain(ps: PolicySet, subject: Subject, resource: Resource, now: datetime) -> Explanation:
    """The decision for these inputs, and why each earlier rule did not apply."""
    decision = engine.decide(ps, subject=subject, resource=resource, now=now)
    req = engine.Request(subject, resource, now)
    reported = dict(decision.report_only)
    trace = []
    for rule in ps.rules:
        failed = criterion_failures(rule, req)
        would = reported.get(rule.id, "")
        matched = not failed or rule.id == decision.rule_id or bool(would)
        trace.append(RuleTrace(rule.id, rule.source, matched, () if matched else tuple(failed),
                               would))
        if rule.id == decision.rule_id:
            break
    return Explanation(decision, tuple(trace), req.path, ps.digest)


def criterion_failures(rule: Rule, req: engine.Request) -> list[str]:
    """Each criterion of the rule that the request fails, as a short sentence."""
    failed = []
    if not engine.match_domains(rule, req):
        failed.append(f"domains: {req.host} not in {list(rule.domains)}")
    if not engine.match_methods(rule, req):
        failed.append(f"methods: {req.method} not in {sorted(rule.methods or ())}")
    if not engine.match_paths(rule, req):
        target = req.path_query if rule.match_query else req.path
        failed.append(f"paths: {target} matches none of {[p.pattern for p in rule.paths]}")
    if not engine.match_networks(rule, req):
        failed.append(f"networks: {req.ip or 'no address'} not in {list(rule.network_names)}")
    if not engine.match_hours(rule, req):
        local = [
            req.local(w.tz.key, w.tz).strftime(f"%a %H:%M {w.tz.key}") for w in rule.hours or ()
        ]
        failed.append(
            f"hours: {', '.join(sorted(set(local)))} outside {[w.text for w in rule.hours or ()]}"
        )
    if rule.subjects is not None and not req.anonymous and not engine.match_subjects(rule, req):
        failed.append(
            f"subjects: {req.user} with groups {sorted(req.groups)} is not {_subjects_text(rule)}"
        )
    return failed


def _subjects_text(rule: Rule) -> str:
    clauses = [
        " and ".join(f"{kind}:{name}" for kind, name in sorted(clause))
        for clause in rule.subjects or ()
    ]
    return " or ".join(f"({c})" if " and " in c else c for c in clauses)
