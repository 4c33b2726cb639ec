"""``authgate directory check``: try every configured DC and report what happened.

Troubleshooting without guessing (issue 3, operator tools): each DC gets its own connection,
outside the failover ring and the service pool, so one report shows every DC's state. The
service binds still pass the circuit (issue 15): the check never spends a second bad password.
"""
from __future__ import annotations

import ssl
import time
from dataclasses import dataclass

from ldap3 import BASE, Connection
from ldap3.core.exceptions import LDAPException

from authgate.config.settings import LdapDirectorySettings
from authgate.core.errors import DirectoryUnavailable
from authgate.directory.ldap_circuit import ServiceBindCircuit, ServiceBindRefused
from authgate.directory.ldap_conn import (
    Connector,
    Endpoint,
    bind_password_of,
    close_quietly,
    service_bind_failure,
)

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


def diagnose(connector: Connector, settings: LdapDirectorySettings,
             circuit: ServiceBindCircuit) -> Diagnosis:
    """Each DC in turn, every service bind through the circuit: a wrong service password
    costs AD one failure on the first DC, and the others are not tried with it."""
    try:
        password = bind_password_of(settings)
    except DirectoryUnavailable as exc:
        failed = tuple(EndpointCheck(e.url, False, str(exc)) for e in connector.ring.endpoints)
        return Diagnosis(failed, settings.bind_dn, settings.base_dn)
    checks = tuple(_check(connector, settings, e, circuit, password)
                   for e in connector.ring.endpoints)
    return Diagnosis(checks, settings.bind_dn, settings.base_dn)


def _check(connector: Connector, settings: LdapDirectorySettings, endpoint: Endpoint,
           circuit: ServiceBindCircuit, password: str) -> EndpointCheck:
    timings: dict[str, float] = {}
    try:
        conn = circuit.bind(bind_dn=settings.bind_dn, password=password,
                            attempt=lambda: _open_and_bind(connector, endpoint, settings.bind_dn,
                                                           password, timings))
    except ServiceBindRefused as exc:
        return EndpointCheck(endpoint.url, False, f"service bind refused: {exc}",
                             connect_ms=timings.get("connect", 0.0),
                             bind_ms=timings.get("bind", 0.0))
    except (DirectoryUnavailable, LDAPException, OSError) as exc:
        return EndpointCheck(endpoint.url, False, f"connect/TLS failed: {exc}",
                             connect_ms=timings.get("connect", 0.0))
    try:
        return _search(conn, endpoint, settings, timings)
    except (LDAPException, OSError) as exc:
        return EndpointCheck(endpoint.url, False, f"connection failed: {exc}",
                             connect_ms=timings.get("connect", 0.0))
    finally:
        close_quietly(conn)


def _open_and_bind(connector: Connector, endpoint: Endpoint, bind_dn: str, password: str,
                   timings: dict[str, float]) -> Connection:
    """One connection to this DC and one service bind; AD's refusal as ``BindRefusedByAd``."""
    t0 = time.perf_counter()
    conn = connector.open_to(endpoint, user=bind_dn, password=password)
    timings["connect"] = _ms(t0)
    t1 = time.perf_counter()
    try:
        ok = conn.bind(read_server_info=False)
    except BaseException:
        close_quietly(conn)
        raise
    timings["bind"] = _ms(t1)
    if not ok:
        close_quietly(conn)
        raise service_bind_failure(endpoint.url, dict(conn.result or {}))
    return conn


def _search(conn: Connection, endpoint: Endpoint, settings: LdapDirectorySettings,
            timings: dict[str, float]) -> EndpointCheck:
    version, cipher = _tls_details(conn)
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
                         timings.get("connect", 0.0), timings.get("bind", 0.0), _ms(t2))


def _tls_details(conn: Connection) -> tuple[str, str]:
    sock = conn.socket
    if not isinstance(sock, ssl.SSLSocket):
        return "none (plain LDAP)", ""
    cipher = sock.cipher()
    return (sock.version() or "none (plain LDAP)"), (cipher[0] if cipher else "")


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 2)
