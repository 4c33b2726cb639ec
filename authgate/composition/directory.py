"""Builds the user directory from settings: the one place that picks the directory backend
and finds, once, which optional roles it plays (``authgate.directory.roles``)."""
from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine

from authgate.audit import AuditLog
from authgate.config import Settings
from authgate.core.clock import Clock, SystemClock
from authgate.core.keys import derive_subkey
from authgate.core.values import AuditEvent, Outcome
from authgate.directory import Directory, DirectoryRoles, roles_of
from authgate.directory.break_glass import BreakGlassDirectory
from authgate.directory.file import FileDirectory
from authgate.directory.ldap_circuit import ServiceBindChange, ServiceBindCircuit
from authgate.storage.sql_service_binds import SqlServiceBindStore

_OUTCOMES = {"refused": (Outcome.DENY, "service_bind_refused"),
             "accepted": (Outcome.SUCCESS, "service_bind_accepted"),
             "reset": (Outcome.SUCCESS, "service_bind_reset")}


def build_directory(settings: Settings, *, engine: Engine | None = None,
                    audit: AuditLog | None = None, clock: Clock | None = None) -> Directory:
    """The configured directory; with ``break_glass_file``, the break-glass file beside it.
    Raises ``ValueError`` for LDAP settings ``check-config`` would have reported.

    AD's service binds go through a circuit shared in the database (``engine``; the
    configured one when not given), so every worker, instance and CLI run follows the same
    verdict on the service password; its changes are audited when ``audit`` is given."""
    primary = _build_primary(settings, engine=engine, audit=audit, clock=clock)
    if settings.directory.break_glass_file:
        local = FileDirectory(Path(settings.directory.break_glass_file))
        return BreakGlassDirectory(primary=primary, local=local,
                                   primary_roles=roles_of(primary))
    return primary


def _build_primary(settings: Settings, *, engine: Engine | None, audit: AuditLog | None,
                   clock: Clock | None) -> Directory:
    if settings.directory.backend == "ldap":
        from authgate.directory.ldap import LdapDirectory  # ldap3 only when AD is used

        circuit = build_service_circuit(settings, engine=engine, audit=audit, clock=clock)
        return LdapDirectory(settings=settings.directory.ldap, circuit=circuit)
    return FileDirectory(Path(settings.directory.file.path))


def build_service_circuit(settings: Settings, *, engine: Engine | None = None,
                          audit: AuditLog | None = None,
                          clock: Clock | None = None) -> ServiceBindCircuit | None:
    """The shared circuit; None (a process-local one) without a session key to key the
    password fingerprints with (demo mode)."""
    secret = settings.secrets.session_key
    if secret is None:
        return None
    if engine is None:
        from authgate.storage.engine import make_engine

        engine = make_engine(settings.storage.url)
    notify = (lambda change: _record(audit, change)) if audit is not None else None
    return ServiceBindCircuit(store=SqlServiceBindStore(engine),
                              key=derive_subkey(secret.reveal(), b"service-bind"),
                              clock=clock or SystemClock(), notify=notify)


def _record(audit: AuditLog, change: ServiceBindChange) -> None:
    outcome, reason = _OUTCOMES[change.outcome]
    detail = [("bind_dn", change.bind_dn)]
    detail += [("ad_code", change.code)] if change.code else []
    detail += [("detail", change.detail[:300])] if change.detail else []
    audit.record(AuditEvent(event="directory.service_bind", outcome=outcome, reason=reason,
                            detail=tuple(detail)))


def active_directory(directory: Directory) -> Directory:
    """The directory that binds to AD: a break-glass composite exposes it as ``primary``.
    Its lockout policy and login-name forms govern every AD account."""
    return directory.primary if isinstance(directory, BreakGlassDirectory) else directory


def ad_roles(directory: Directory) -> DirectoryRoles:
    """The roles of the directory behind ``directory`` that describe AD itself."""
    return roles_of(active_directory(directory))
