"""Ban administration, one use case for the admin console and ``authgate bans``: the same
reason rule and the same audit shape (the operator is the ``actor``, never the username)."""
from __future__ import annotations

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
        client_ip=meta.client_ip, user_agent=meta.user_agent, request_id=meta.request_id,
        detail=(("actor", operator), ("count", str(len(bans))))))
    return bans


def lift_ban(*, registry: BanRegistry, operator: str, target: str, reason: str,
             meta: RequestMeta | None = None) -> list[str]:
    """Lift the bans on a user or an IP; raises ``ReasonRequired`` without a reason of at
    least ``MIN_REASON`` characters. The registry audits the lift (``ban.lift``)."""
    return registry.lift(target, operator=operator, reason=need_reason(reason), meta=meta)
