"""Ban administration, one use case for the admin console and ``authgate bans``: the same
reason rule and the same audit shape (the operator is the ``actor``, never the username)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from authgate.admin.reasons import need_reason
from authgate.audit import AuditLog
from authgate.core.values import AuditEvent, Outcome, RequestMeta
from authgate.regulation import BanRegistry
from authgate.storage.regulation_rows import Ban


def list_bans(*, registry: BanRegistry, audit: AuditLog, operator: str,
              meta: RequestMeta) -> list[Ban]:
    """The active bans, the listing itself audited (``ban.list``)."""
    bans = registry.active_bans()
    audit.record(AuditEvent(
        event="ban.list", outcome=Outcome.INFO, reason="operator_list",
        **meta.asked(),
        detail=(("actor", operator), ("count", str(len(bans))))))
    return bans


def lift_ban(*, registry: BanRegistry, operator: str, target: str, reason: str,
             meta: RequestMeta | None = None) -> list[str]:
    """Lift the bans on a user or an IP; raises ``ReasonRequired`` without a reason of at
    least ``MIN_REASON`` characters. The registry audits the lift (``ban.lift``)."""
    return registry.lift(target, operator=operator, reason=need_reason(reason), meta=meta)


#: why a ban was set, in the words the console uses (the reason codes of regulation.rules)
BAN_REASONS = {
    "user_banned": "too many failed passwords",
    "user_ip_banned": "too many failed passwords",
    "ip_banned": "too many failed sign-ins from this address",
    "spray_source": "tried many accounts (password spraying)",
    "password_spray": "a password tried against many accounts",
    "factor_banned": "too many wrong second-factor codes",
}


@dataclass(frozen=True)
class BanView:
    """One ban as an admin reads it: who, why, until when, and what ``lift`` takes."""

    who: str
    why: str
    until_local: str
    until_utc: str
    #: the user name or IP address to lift, "" when only time lifts it (a sprayed password)
    target: str

    @property
    def sentence(self) -> str:
        return f"{self.who}, {self.why}, until {self.until_local}"


def describe_ban(ban: Ban, *, tz: str | None, now: datetime) -> BanView:
    """``userip:tomas|10.1.2.3`` → "tomas from 10.1.2.3, too many failed passwords, until
    21:27 Toronto time" (the policy's time zone, issue 17 item 8; UTC beside it)."""
    kind, _, rest = ban.subject.partition(":")
    who, target = {
        "user": (f"{rest} (from any address)", rest),
        "factor": (f"{rest} (second-factor codes)", rest),
        "ip": (f"address {rest}", rest if "/" not in rest else rest.split("/", 1)[0]),
        "pw": ("one password (from any address)", ""),
    }.get(kind, (rest.replace("|", " from ", 1), rest.split("|", 1)[0]))
    why = BAN_REASONS.get(ban.reason, ban.reason.replace("_", " "))
    return BanView(who=who, why=why, until_local=local_time(ban.until, tz=tz, now=now),
                   until_utc=ban.until.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC"),
                   target=target)


def local_time(when: datetime, *, tz: str | None, now: datetime) -> str:
    """``21:27 Toronto time`` (the date too when it is not today there)."""
    zone = _zone(tz)
    local = when.astimezone(zone)
    label = f"{tz.rsplit('/', 1)[-1].replace('_', ' ')} time" if tz and zone is not UTC \
        else "UTC"
    day = "" if local.date() == now.astimezone(zone).date() else local.strftime("%Y-%m-%d ")
    return f"{day}{local.strftime('%H:%M')} {label}"


def _zone(tz: str | None) -> tzinfo:
    if not tz:
        return UTC
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC
