"""The configuration schema as frozen dataclasses. Field types drive validation.

Durations are written ``30s``, ``15m``, ``12h``, ``7d`` (or ``1h30m``). Secrets (``Secret``
fields) may be given inline, as ``<name>_file: /path``, or via the environment; they never
appear in ``repr`` or logs.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Literal

from authgate.config.audit import AuditSettings
from authgate.config.secret import Secret

__all__ = ["Secret"]  # re-exported: the settings' secret fields are of this type




@dataclass(frozen=True)
class ServerSettings:
    #: the portal's own base URL (login pages); the 401 Location points here
    public_url: str = "http://localhost:9091"
    #: peers whose X-Forwarded-* / X-Original-* headers are believed
    trusted_proxies: tuple[str, ...] = ("127.0.0.1/32", "::1/128")
    #: peers that may scrape ``/metrics`` (a request a proxy forwarded never may)
    metrics_networks: tuple[str, ...] = ("127.0.0.1/32", "::1/128")
    #: hosts a return URL may point to (exact or ``*.suffix``)
    protected_domains: tuple[str, ...] = ("localhost",)
    #: plain http return URLs, for localhost only (demo and tests)
    allow_http_localhost: bool = False
    max_form_bytes: int = 16384
    #: refused page requests (CSRF, method, size) of one client address recorded a minute,
    #: per worker; past it they are counted and the next record carries the count
    refusal_records_per_minute: int = 60
    #: PEM Ed25519 private key: when set, ``Remote-Identity`` carries a signed JWT for apps
    #: that want proof the identity came from authgate (ASVS 14.5.4)
    identity_key_file: str = ""


@dataclass(frozen=True)
class SessionSettings:
    cookie_name: str = "authgate_session"
    #: shared SSO cookie domain (e.g. ``city.test``); unset → host-only ``__Host-`` cookie
    cookie_domain: str | None = None
    idle_timeout: timedelta = timedelta(minutes=30)
    max_age: timedelta = timedelta(hours=12)
    #: last-seen is written at most this often (saves a write per request)
    touch_interval: timedelta = timedelta(seconds=30)


@dataclass(frozen=True)
class SecretSettings:
    session_key: Secret | None = None
    audit_key: Secret | None = None
    #: AES-256-GCM keys for secrets at rest, ``<kid>:<base64 32 bytes>``; the first encrypts,
    #: all decrypt (rotation: add a new first key, run ``authgate keys rotate``)
    encryption_keys: tuple[Secret, ...] = ()


@dataclass(frozen=True)
class WebAuthnSettings:
    #: the relying party id: the registrable domain the credentials are bound to
    rp_id: str = "localhost"
    rp_name: str = "City staff sign-in"
    #: origins allowed in client data; empty → the portal's public_url
    origins: tuple[str, ...] = ()
    #: offer "sign in with a passkey" (discoverable credential, user verification required)
    #: on the login page, without typing a username or password; off by default
    passkey_sign_in: bool = False
    #: passkey sign-in requests (options and verify) one client address may make a minute,
    #: per worker process (IPv6 by /64); more are answered 429 before anything is stored
    passkey_requests_per_minute: int = 60
    #: PEM file of attestation root certificates (e.g. the FIDO Metadata Service roots the
    #: city downloads): the trust anchors when the policy requires attested authenticators
    #: (``factors.webauthn.attestation`` other than ``none``, or an ``aaguid_allowlist``)
    attestation_roots_file: str = ""


@dataclass(frozen=True)
class StorageSettings:
    url: str = "sqlite:///instance/authgate.db"
    echo: bool = False


@dataclass(frozen=True)
class FileDirectorySettings:
    path: str = "instance/users.yaml"


@dataclass(frozen=True)
class LdapDirectorySettings:
    urls: tuple[str, ...] = ()
    base_dn: str = ""
    bind_dn: str = ""
    bind_password: Secret | None = None
    ca_file: str = ""
    start_tls: bool = False
    allow_plain: bool = False
    min_tls: Literal["TLSv1.2", "TLSv1.3"] = "TLSv1.2"
    connect_timeout: float = 1.0
    receive_timeout: float = 5.0
    login_attribute: Literal["sAMAccountName", "userPrincipalName"] = "sAMAccountName"
    upn_suffix: str = ""
    netbios_domain: str = ""
    group_name_attribute: str = "cn"
    #: narrow the user and group searches (the group search scoped to the groups OU is
    #: several times cheaper on a busy DC)
    user_base_dn: str = ""
    group_base_dn: str = ""
    #: a DC that failed is skipped for this long before it is tried again
    failover_hold_seconds: float = 30.0
    #: service-account connections kept open per process
    pool_size: int = 8


@dataclass(frozen=True)
class DirectorySettings:
    backend: Literal["file", "ldap"] = "file"
    #: a users file of break-glass accounts beside AD (argon2id; WebAuthn required to use)
    break_glass_file: str = ""
    file: FileDirectorySettings = field(default_factory=FileDirectorySettings)
    ldap: LdapDirectorySettings = field(default_factory=LdapDirectorySettings)


@dataclass(frozen=True)
class PolicySettings:
    path: str = "policies"
    require_approval: bool = True


@dataclass(frozen=True)
class LoggingSettings:
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["json", "text"] = "json"


@dataclass(frozen=True)
class Settings:
    #: ``demo`` allows the labelled demo secret and http on localhost; never in production
    mode: Literal["production", "demo"] = "production"
    server: ServerSettings = field(default_factory=ServerSettings)
    session: SessionSettings = field(default_factory=SessionSettings)
    secrets: SecretSettings = field(default_factory=SecretSettings)
    storage: StorageSettings = field(default_factory=StorageSettings)
    directory: DirectorySettings = field(default_factory=DirectorySettings)
    policy: PolicySettings = field(default_factory=PolicySettings)
    webauthn: WebAuthnSettings = field(default_factory=WebAuthnSettings)
    audit: AuditSettings = field(default_factory=AuditSettings)
    logging: LoggingSettings = field(default_factory=LoggingSettings)
