"""The audit trail: one call per decision, from one place, with one frozen event type."""
from __future__ import annotations

from authgate.audit.log import AuditLog

__all__ = ["AuditLog"]
