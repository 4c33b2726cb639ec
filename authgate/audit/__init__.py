"""The audit trail: one call per decision, from one place, with one frozen event type.

``AuditLog.record(event)`` seals each record into its writer's hash chain, stores it and
copies it to the SIEM sinks; ``build_audit_log`` wires it from settings (docs/audit.md).
"""
from __future__ import annotations

from authgate.audit.log import AuditLog

__all__ = ["AuditLog"]
