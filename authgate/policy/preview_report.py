"""What ``authgate policy preview`` reports (issue 19 items 1 and 2): changed groups, the
users in each class, report-only outcomes and readiness, as a table or ``--json``.

Pure values: the replay (``policy.preview``) fills them; the parts of several jobs merge
into the report one job would have made (``merge_parts``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from authgate.policy.readiness import RaisedUse, RuleReadiness

_SAYS = {"loses_access": "would lose access", "needs_step_up": "would need to log in or step up",
         "gains_access": "would newly gain access"}


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

    def merge(self, other: Seen) -> None:
        self.count += other.count
        for at in (other.first, other.last):
            if at is not None:
                self.first = at if self.first is None or at < self.first else self.first
                self.last = at if self.last is None or at > self.last else self.last

    def to_dict(self) -> dict[str, Any]:
        return {"count": self.count, "first": iso(self.first), "last": iso(self.last)}


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


@dataclass
class PreviewPart:
    """What one job's replay found (records of one id range); ``merge_parts`` adds parts
    in id order, so samples are the earliest ones, as one job would keep them."""

    replayed: int = 0
    unchanged: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    groups: dict[tuple[str, str | None, str, str], ChangeGroup] = field(default_factory=dict)
    users: dict[str, dict[str, Seen]] = field(default_factory=dict)  # kind → user → seen
    report_only: dict[tuple[str, str], Seen] = field(default_factory=dict)
    raised: dict[str, RaisedUse] = field(default_factory=dict)  # pending rule → its users


def merge_parts(parts: list[PreviewPart], *, samples: int) -> PreviewPart:
    """The parts of consecutive id ranges as one part (first part first)."""
    out = PreviewPart()
    for part in parts:
        out.replayed += part.replayed
        out.unchanged += part.unchanged
        for why, n in part.skipped.items():
            out.skipped[why] = out.skipped.get(why, 0) + n
        for key, group in part.groups.items():
            mine = out.groups.setdefault(key, ChangeGroup(group.kind, group.host,
                                                          group.rule_id, group.was, group.now))
            mine.seen.merge(group.seen)
            mine.samples.extend(group.samples[:samples - len(mine.samples)])
        for kind, users in part.users.items():
            for user, seen in users.items():
                out.users.setdefault(kind, {}).setdefault(user, Seen()).merge(seen)
        for entry, seen in part.report_only.items():
            out.report_only.setdefault(entry, Seen()).merge(seen)
        for rule_id, use in part.raised.items():
            out.raised.setdefault(rule_id, RaisedUse(rule_id, use.level,
                                                     use.report_only)).merge(use)
    return out


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
    #: per pending rule that raises a level: who used it (``policy.readiness``)
    raised: dict[str, RaisedUse] = field(default_factory=dict)
    #: who of them holds no credential for it (None: the credential store was not read)
    readiness: tuple[RuleReadiness, ...] | None = None

    @classmethod
    def of(cls, digest: str, part: PreviewPart) -> PreviewReport:
        groups = sorted(part.groups.values(), key=lambda g: (g.kind, g.host,
                                                             g.rule_id or "", g.was))
        return cls(digest, part.replayed, part.unchanged, dict(part.skipped), tuple(groups),
                   part.users, part.report_only, part.raised)

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
            "readiness": None if self.readiness is None else [
                r.to_dict() for r in self.readiness],
        }

    def summary(self, *, top: int = 5) -> dict[str, Any]:
        """Bounded figures for the admin console and the approval record: totals, people
        per class, the ``top`` largest groups, readiness counts per rule (no samples)."""
        groups = sorted(self.groups, key=lambda g: (-g.seen.count, g.kind, g.host))
        return {
            "digest": self.digest, "replayed": self.replayed, "changed": self.changed,
            "skipped": sum(self.skipped.values()),
            "people": {kind: len(users) for kind, users in sorted(self.users.items())},
            "top_groups": [{"kind": g.kind, "host": g.host, "rule": g.rule_id or "default",
                            "change": f"{g.was}→{g.now}", "requests": g.seen.count}
                           for g in groups[:top]],
            "more_groups": max(0, len(groups) - top),
            "readiness": [{"rule": r.rule_id, "level": r.level.value, "people": r.people,
                           "ready": r.ready, "not_ready": len(r.missing),
                           "first_not_ready": [u for u, *_ in r.missing[:top]]}
                          for r in self.readiness or ()],
        }

    def lines(self) -> list[str]:
        """A readable table: totals, the changed groups, the users, report-only outcomes,
        readiness."""
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
                       f"{iso(g.seen.first)} / {iso(g.seen.last)}")
            out.extend(f"    e.g. {_sample_text(s)}" for s in g.samples)
        for kind, users in sorted(self.users.items()):
            names = ", ".join(f"{u} ({s.count})" for u, s in sorted(users.items()))
            out.append(f"users who {_SAYS[kind]}: {names}")
        out.extend(f"report-only {rule}: {would} x{seen.count}"
                   for (rule, would), seen in sorted(self.report_only.items()))
        for rule in self.readiness or ():
            out.extend(rule.lines())
        if not self.readiness and self.readiness is not None:
            out.append("readiness: no rule raises the level anyone used")
        return out


def _sample_text(s: dict[str, Any]) -> str:
    return (f"#{s['record_id']} {s['at']} {s['user'] or '(anonymous)'} {s['method']} "
            f"{s['host']}{s['path']} from {s['ip'] or '-'} (was {s['was_rule']}; now "
            f"{s['reason']})")


def iso(when: datetime | None) -> str | None:
    return when.isoformat(timespec="seconds") if when is not None else None
