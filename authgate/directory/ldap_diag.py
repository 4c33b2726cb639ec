"""``authgate directory check``: try every configured DC and report what happened.

Troubleshooting without guessing (issue 3, operator tools): each DC gets its own connection,
outside the failover ring and the service pool, so one report shows every DC's state.
"""
from __future__ import annotations

import ssl
import time
from dataclasses import dataclass

from ldap3 import BASE, Connection
from ldap3.core.exceptions import LDAPException

from authgate.config.settings import LdapDirectorySettings
from authgate.directory.ldap_conn import Connector, Endpoint, bind_password_of, close_quietly

_ROOT_ATTRIBUTES = ["dnsHostName", "serverName", "defaultNamingContext"]


@dataclass(frozen=True)
class EndpointCheck:
    """One DC: reachable, TLS details, service bind and search timings (milliseconds)."""

    url: str
    ok: bool
    error: str = ""
    tls_version: str = ""
    cipher: str = ""
    dc_host: str = ""
    connect_ms: float = 0.0
    bind_ms: float = 0.0
    search_ms: float = 0.0


@dataclass(frozen=True)
class Diagnosis:
    endpoints: tuple[EndpointCheck, ...]
    bind_dn: str
    base_dn: str

    @property
    def ok(self) -> bool:
        """Logins can be served when at least one DC accepted the service bind."""
        return any(e.ok for e in self.endpoints)

    @property
    def answered_by(self) -> str:
        """The DC a login would use now: the first one that works, in configured order."""
        return next((e.url for e in self.endpoints if e.ok), "")


def diagnose(connector: Connector, settings: LdapDirectorySettings) -> Diagnosis:
    checks = tuple(_check(connector, settings, e) for e in connector.ring.endpoints)
    return Diagnosis(checks, settings.bind_dn, settings.base_dn)


def _check(connector: Connector, settings: LdapDirectorySettings,
           endpoint: Endpoint) -> EndpointCheck:
    t0 = time.perf_counter()
    try:
        conn = connector.open_to(endpoint, user=settings.bind_dn,
                                 password=bind_password_of(settings))
    except (LDAPException, OSError) as exc:
        return EndpointCheck(endpoint.url, False, f"connect/TLS failed: {exc}",
                             connect_ms=_ms(t0))
    connect_ms = _ms(t0)
    try:
        return _bind_and_search(conn, endpoint, settings, connect_ms)
    except (LDAPException, OSError) as exc:
        return EndpointCheck(endpoint.url, False, f"connection failed: {exc}",
                             connect_ms=connect_ms)
    finally:
        close_quietly(conn)


def _bind_and_search(conn: Connection, endpoint: Endpoint, settings: LdapDirectorySettings,
                     connect_ms: float) -> EndpointCheck:
    version, cipher = _tls_details(conn)
    t1 = time.perf_counter()
    if not conn.bind(read_server_info=False):
        result = conn.result or {}
        return EndpointCheck(endpoint.url, False,
                             f"service bind refused: {result.get('description')} "
                             f"{result.get('message', '')}".strip(),
                             version, cipher, connect_ms=connect_ms, bind_ms=_ms(t1))
    bind_ms = _ms(t1)
    t2 = time.perf_counter()
    conn.search("", "(objectClass=*)", BASE, attributes=_ROOT_ATTRIBUTES)
    root = next((r.get("attributes") or {} for r in conn.response or []
                 if r.get("type") == "searchResEntry"), {})
    conn.search(settings.base_dn, "(objectClass=*)", BASE, attributes=["1.1"])
    ok = (conn.result or {}).get("result") == 0
    error = "" if ok else f"base DN {settings.base_dn!r}: {(conn.result or {}).get('description')}"
    host = root.get("dnsHostName") or ""
    return EndpointCheck(endpoint.url, ok, error, version, cipher,
                         str(host[0] if isinstance(host, list) and host else host),
                         connect_ms, bind_ms, _ms(t2))


def _tls_details(conn: Connection) -> tuple[str, str]:
    sock = conn.socket
    if not isinstance(sock, ssl.SSLSocket):
        return "none (plain LDAP)", ""
    cipher = sock.cipher()
    return (sock.version() or "none (plain LDAP)"), (cipher[0] if cipher else "")


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 2)
