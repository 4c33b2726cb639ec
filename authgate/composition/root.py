"""Builds every component from settings, once. The only place that picks backends."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from sqlalchemy import Engine

from authgate.access.forward_auth import ForwardAuth
from authgate.access.identity_token import IdentitySigner
from authgate.access.proxy_headers import TrustedProxies
from authgate.admin.actions import AdminActions
from authgate.audit import AuditLog
from authgate.composition.audit import build_audit_log
from authgate.composition.credentials import build_mfa
from authgate.composition.directory import build_directory
from authgate.composition.regulation import build_regulator
from authgate.config import Settings
from authgate.config.loader import DEMO_SECRET_PREFIX
from authgate.core.clock import Clock, SystemClock
from authgate.core.values import AuditEvent, Outcome
from authgate.credentials.second_factors import SecondFactors
from authgate.directory import Directory, DirectoryRoles, roles_of
from authgate.login.key_step import SecurityKeyLogin
from authgate.login.passkey import PasskeyLogin
from authgate.login.password import LoginService
from authgate.login.recovery_step import RecoveryLogin
from authgate.login.second_factor import SecondFactorLogin
from authgate.policy.live import PolicyRuntime, ReloadResult
from authgate.regulation import Regulator
from authgate.regulation.rate import RateLimiter, RecordSampler
from authgate.sessions.ending import SessionEnding
from authgate.sessions.refresh import AccountRefresher
from authgate.sessions.service import SessionService
from authgate.storage.engine import make_engine
from authgate.storage.interfaces import AuditStore
from authgate.storage.sql_login_step import SqlLoginSteps
from authgate.storage.sql_sessions import SqlSessionStore

DEMO_SESSION_KEY = DEMO_SECRET_PREFIX + "session-key-do-not-use-in-production"


@dataclass
class Services:
    settings: Settings
    clock: Clock
    engine: Engine
    directory: Directory
    directory_roles: DirectoryRoles
    policies: PolicyRuntime
    sessions: SessionService
    audit: AuditLog
    audit_store: AuditStore
    forward_auth: ForwardAuth
    login: LoginService
    trusted_proxies: TrustedProxies
    mfa: SecondFactors
    regulator: Regulator
    admin: AdminActions
    session_ending: SessionEnding
    passkey_login: PasskeyLogin
    factor_login: SecondFactorLogin
    recovery_login: RecoveryLogin
    key_login: SecurityKeyLogin
    #: which refused page requests get a record of their own (``web.errors``)
    refusal_records: RecordSampler
    identity_signer: IdentitySigner | None = None

    @property
    def session_key(self) -> str:
        return session_key_of(self.settings)

    @property
    def previous_session_keys(self) -> tuple[str, ...]:
        """Earlier session keys, newest first (``keys rotate session`` keeps them below the
        current one): forms and cookies they signed before a rotation still check."""
        key = self.settings.secrets.session_key
        return key.older() if key is not None else ()


def session_key_of(settings: Settings) -> str:
    """The configured session secret; the labelled demo key only where config allows it."""
    key = settings.secrets.session_key
    return key.reveal() if key is not None else DEMO_SESSION_KEY


def build_services(settings: Settings, *, clock: Clock | None = None,
                   directory: Directory | None = None,
                   recovery_hasher: PasswordHasher | None = None) -> Services:
    clock = clock or SystemClock()
    engine = make_engine(settings.storage.url, echo=settings.storage.echo)
    audit = build_audit_log(settings, engine, clock)
    audit_store = audit.store
    policies = PolicyRuntime(Path(settings.policy.path),
                             require_approval=settings.policy.require_approval,
                             on_reload=lambda result: _audit_reload(audit, result))
    directory = directory or build_directory(settings, engine=engine, audit=audit, clock=clock)
    roles = roles_of(directory)
    sessions = _build_sessions(settings, engine=engine, clock=clock, directory=directory,
                               roles=roles, audit=audit, policies=policies)
    regulator = build_regulator(settings, engine=engine, policies=policies, clock=clock,
                                audit=audit, directory=directory)
    session_key = session_key_of(settings)
    mfa = build_mfa(settings, engine=engine, policies=policies, audit=audit,
                    clock=clock, sessions=sessions, session_key=session_key,
                    recovery_hasher=recovery_hasher)
    return Services(
        settings=settings, clock=clock, engine=engine, directory=directory,
        directory_roles=roles,
        policies=policies, sessions=sessions, audit=audit, audit_store=audit_store,
        forward_auth=ForwardAuth(policies=policies, sessions=sessions, audit=audit,
                                 clock=clock),
        login=LoginService(directory=directory, password_changer=roles.password_changer,
                           sessions=sessions, audit=audit, regulator=regulator),
        trusted_proxies=TrustedProxies.parse(settings.server.trusted_proxies),
        mfa=mfa, regulator=regulator,
        admin=AdminActions(audit=audit, sessions=sessions, mfa=mfa, regulator=regulator),
        session_ending=SessionEnding(sessions=sessions, audit=audit),
        refusal_records=RecordSampler(per_minute=settings.server.refusal_records_per_minute,
                                      clock=clock),
        **_login_steps(engine, settings, mfa=mfa, directory=directory, regulator=regulator,
                       sessions=sessions, audit=audit, clock=clock),
        identity_signer=IdentitySigner.from_pem_file(
            settings.server.identity_key_file, issuer=settings.server.public_url)
        if settings.server.identity_key_file else None,
    )


def _login_steps(engine: Engine, settings: Settings, *, mfa: SecondFactors,
                 directory: Directory, regulator: Regulator, sessions: SessionService,
                 audit: AuditLog, clock: Clock) -> dict[str, Any]:
    """The second-factor login steps and passkey sign-in, their writes in one transaction
    each (issue 20 item 1), as ``Services`` fields."""
    unit = SqlLoginSteps(engine)
    per_minute = settings.webauthn.passkey_requests_per_minute
    return {
        "factor_login": SecondFactorLogin(totp=mfa.totp, regulator=regulator,
                                          sessions=sessions, audit=audit, unit=unit,
                                          clock=clock),
        "recovery_login": RecoveryLogin(recovery=mfa.recovery, regulator=regulator,
                                        sessions=sessions, audit=audit, unit=unit,
                                        clock=clock),
        "key_login": SecurityKeyLogin(webauthn=mfa.webauthn, regulator=regulator,
                                      sessions=sessions, audit=audit, unit=unit, clock=clock),
        "passkey_login": PasskeyLogin(
            webauthn=mfa.webauthn, directory=directory, regulator=regulator,
            sessions=sessions, audit=audit, unit=unit, clock=clock,
            limiter=RateLimiter(per_minute=per_minute, clock=clock)),
    }


def _build_sessions(settings: Settings, *, engine: Engine, clock: Clock, directory: Directory,
                    roles: DirectoryRoles, audit: AuditLog, policies: PolicyRuntime
                    ) -> SessionService:
    """The session store, then the refresher that re-reads accounts, then the service."""
    store = SqlSessionStore(engine)
    refresher = AccountRefresher(
        directory=directory, status=roles.account_status, store=store, audit=audit,
        clock=clock, interval=lambda: policies.current.settings.sessions.refresh_interval)
    return SessionService(store, clock, refresher=refresher,
                          idle_timeout=settings.session.idle_timeout,
                          max_age=settings.session.max_age,
                          touch_interval=settings.session.touch_interval)


def _audit_reload(audit: AuditLog, result: ReloadResult) -> None:
    if result.problems:
        audit.record(AuditEvent(
            event="policy.reload", outcome=Outcome.DENY, reason="policy_rejected",
            policy_digest=result.digest,
            detail=(("rejected_digest", result.rejected_digest),
                    ("problems", "; ".join(result.problems)[:500])),
        ))
    elif result.changed:
        audit.record(AuditEvent(event="policy.reload", outcome=Outcome.SUCCESS,
                                reason="policy_loaded", policy_digest=result.digest))
