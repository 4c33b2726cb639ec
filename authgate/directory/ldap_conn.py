"""Connections to Active Directory: verified TLS, failover and a service pool.

The settings are ``config.settings.LdapDirectorySettings`` (one type for the loader and
the directory); ``Connector`` refuses any that break ``config.ldap_rules``.

Why not ldap3's ``ServerPool``: measured with ldap3 2.9.1 it registers every connection in
``pool_states`` for ever (a leak with one user-bind connection per login), sleeps
``POOLING_LOOP_TIMEOUT`` (10 s) after a failed cycle, shares unsynchronised state between
threads, and keeps an exhausted DC out even when every DC is down. ``ServerRing`` keeps its
FIRST-strategy-with-exhaust semantics: configured order, a DC that failed to open is held back
for ``failover_hold_seconds``, and when all are held back all are tried anyway.

Failover happens only while *opening* a connection, before any password is sent (issue 3:
a bind is never retried, not even on another DC).
"""
from __future__ import annotations

import logging
import os
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from time import perf_counter
from typing import Any, TypeVar
from urllib.parse import urlsplit

from ldap3 import NONE, SIMPLE, SYNC, Connection, Server, Tls
from ldap3.core.exceptions import LDAPCommunicationError, LDAPException

from authgate.config.ldap_rules import check_ldap_settings
from authgate.config.settings import LdapDirectorySettings
from authgate.core.errors import DirectoryUnavailable
from authgate.core.metrics import directory_bound, directory_reached
from authgate.directory.ldap_circuit import BindRefusedByAd, ServiceBindCircuit
from authgate.directory.ldap_states import data_code

log = logging.getLogger("authgate.directory.ldap")
T = TypeVar("T")

_TLS_VERSIONS = {"TLSv1.2": ssl.TLSVersion.TLSv1_2, "TLSv1.3": ssl.TLSVersion.TLSv1_3}


def bind_password_of(settings: LdapDirectorySettings) -> str:
    """The service account's password, revealed only to hand it to a bind. A password from
    ``bind_password_file`` is read again each time: an operator who fixes the file fixes the
    running gateway (issue 15), and the circuit sees a new password."""
    secret = settings.bind_password
    if secret is None:
        return ""
    try:
        return secret.current()
    except OSError as exc:
        raise DirectoryUnavailable(f"service password file unreadable: {exc.strerror}") from exc


@dataclass(frozen=True)
class Endpoint:
    """One domain controller as configured."""

    url: str
    host: str
    port: int
    use_ssl: bool
    start_tls: bool


def endpoints_of(settings: LdapDirectorySettings) -> tuple[Endpoint, ...]:
    result = []
    for url in settings.urls:
        parts = urlsplit(url)
        ssl_ = parts.scheme.lower() == "ldaps"
        port = parts.port or (636 if ssl_ else 389)
        start_tls = settings.start_tls and not ssl_
        result.append(Endpoint(url, parts.hostname or "", port, ssl_, start_tls))
    return tuple(result)


def tls_context(*, ca_file: str, min_tls: str) -> ssl.SSLContext:
    """Certificate and host name verified against ``ca_file`` only (RFC 4513 3.1.3, RFC 6125)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED and check_hostname
    ctx.minimum_version = _TLS_VERSIONS[min_tls]
    try:
        ctx.load_verify_locations(cafile=ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"ca_file {ca_file!r} cannot be loaded: {exc}") from exc
    return ctx


def set_nodelay(sock: Any) -> None:
    """Disable Nagle: it stalls the first LDAP request after a TLS 1.3 handshake by ~44 ms."""
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _VerifiedTls(Tls):  # type: ignore[misc]
    """ldap3's Tls with one prebuilt ``SSLContext`` (no CA file re-read per connection) and
    Python's own host name check, which understands IP SANs."""

    def __init__(self, context: ssl.SSLContext) -> None:
        super().__init__(validate=ssl.CERT_REQUIRED)
        self._context = context

    def wrap_socket(self, connection: Connection, do_handshake: bool = False) -> None:
        set_nodelay(connection.socket)
        connection.socket = self._context.wrap_socket(
            connection.socket, server_hostname=connection.server.host, do_handshake_on_connect=True
        )


class ServerRing:
    """FIRST strategy with exhaust: configured order, failed DCs held back for a while."""

    def __init__(self, endpoints: tuple[Endpoint, ...], *, hold_seconds: float) -> None:
        self.endpoints = endpoints
        self._hold = hold_seconds
        self._held_until: dict[Endpoint, float] = {}
        self._lock = threading.Lock()
        self._pid = os.getpid()

    def candidates(self) -> list[Endpoint]:
        """Live DCs in configured order, then held-back ones (a last resort beats no answer)."""
        self._after_fork()
        now = time.monotonic()
        with self._lock:
            held = {e: t for e, t in self._held_until.items() if t > now}
        live = [e for e in self.endpoints if e not in held]
        return live + sorted(held, key=held.__getitem__)

    def mark_down(self, endpoint: Endpoint) -> None:
        with self._lock:
            self._held_until[endpoint] = time.monotonic() + self._hold

    def mark_up(self, endpoint: Endpoint) -> None:
        if endpoint in self._held_until:
            with self._lock:
                self._held_until.pop(endpoint, None)

    def _after_fork(self) -> None:
        if self._pid != os.getpid():  # a lock held at fork time would never be released
            self._pid, self._lock = os.getpid(), threading.Lock()


class Connector:
    """Opens connections to the first DC that answers, with TLS verified before any bind."""

    def __init__(self, settings: LdapDirectorySettings) -> None:
        check_ldap_settings(settings)  # ValueError: nothing is opened with unsafe settings
        self.settings = settings
        self.ring = ServerRing(endpoints_of(settings), hold_seconds=settings.failover_hold_seconds)
        needs_tls = any(e.use_ssl or e.start_tls for e in self.ring.endpoints)
        self._tls = _VerifiedTls(tls_context(ca_file=settings.ca_file, min_tls=settings.min_tls)) \
            if needs_tls else None

    def open(
        self, *, user: str | None = None, password: str | None = None,
    ) -> tuple[Connection, Endpoint]:
        """An open, TLS-protected, not yet bound connection. Raises ``DirectoryUnavailable``."""
        errors = []
        for endpoint in self.ring.candidates():
            try:
                conn = self.open_to(endpoint, user=user, password=password)
            except (LDAPException, OSError) as exc:
                self.ring.mark_down(endpoint)
                directory_reached(endpoint.url, up=False)
                log.warning("domain controller %s unavailable: %s", endpoint.url, exc)
                errors.append(f"{endpoint.url}: {exc}")
                continue
            self.ring.mark_up(endpoint)
            directory_reached(endpoint.url, up=True)
            return conn, endpoint
        raise DirectoryUnavailable("no domain controller answered: " + "; ".join(errors))

    def open_to(self, endpoint: Endpoint, *, user: str | None, password: str | None) -> Connection:
        server = Server(endpoint.host, port=endpoint.port, use_ssl=endpoint.use_ssl, tls=self._tls,
                        get_info=NONE, connect_timeout=self.settings.connect_timeout)
        conn = Connection(server, user=user, password=password, authentication=SIMPLE,
                          client_strategy=SYNC, raise_exceptions=False, auto_referrals=False,
                          receive_timeout=None)  # ldap3 packs it as an int; set below instead
        try:
            conn.open(read_server_info=False)
            set_nodelay(conn.socket)
            conn.socket.settimeout(self.settings.receive_timeout)
            if endpoint.start_tls and not conn.start_tls(read_server_info=False):
                raise LDAPCommunicationError(f"StartTLS refused: {conn.result}")
        except BaseException:
            close_quietly(conn)
            raise
        return conn


def service_bind_failure(url: str, result: dict[str, Any]) -> Exception:
    """invalidCredentials (49, any ``data`` code: 52e, 775, 533, 701, 773, 532...) is AD's
    verdict on the password and opens the circuit; anything else is an outage."""
    message = str(result.get("message") or "")
    detail = f"{result.get('description')} {message}".strip()
    if result.get("result") == 49:
        return BindRefusedByAd(data_code(message) or "49", detail[:250])
    return DirectoryUnavailable(f"service account bind refused by {url}: {detail}")


def close_quietly(conn: Connection) -> None:
    """Unbind and close; errors on a connection being thrown away do not matter."""
    conn.password = None
    try:
        conn.unbind()
    except (LDAPException, OSError):
        pass


@dataclass
class _Idle:
    conn: Connection
    since: float


class ServicePool:
    """A few service-account connections shared by threads, reopened after a fork.

    One thread uses one connection at a time (ldap3 SYNC connections are not thread-safe).
    A gunicorn worker forked from a parent that already connected must not share the parent's
    TLS sockets: on a pid change the idle list is dropped without unbinding.
    """

    max_idle = 300.0  # seconds; AD drops idle connections after MaxConnIdleTime (900 s)

    def __init__(self, connector: Connector, circuit: ServiceBindCircuit) -> None:
        self._connector = connector
        self._circuit = circuit
        self._size = connector.settings.pool_size
        self._idle: list[_Idle] = []
        self._lock = threading.Lock()
        self._pid = os.getpid()

    def run(self, op: Callable[[Connection], T]) -> T:
        """``op`` on a bound service connection. A stale reused connection is retried once on a
        fresh one (safe: service operations carry no user password). Every ldap3 error ends
        as ``DirectoryUnavailable``."""
        conn, reused = self._take()
        try:
            return self._attempt(conn, op)
        except LDAPCommunicationError as exc:
            self.clear(close_quietly)  # the DC went away: the other idle ones are dead too
            if not reused:
                raise DirectoryUnavailable(f"domain controller connection failed: {exc}") from exc
        try:
            return self._attempt(self.open_bound(), op)
        except LDAPCommunicationError as exc:
            raise DirectoryUnavailable(f"domain controller connection failed: {exc}") from exc

    def _attempt(self, conn: Connection, op: Callable[[Connection], T]) -> T:
        """Run ``op``; the connection goes back to the pool only after a clean run."""
        try:
            result = op(conn)
        except LDAPCommunicationError:
            close_quietly(conn)
            raise
        except LDAPException as exc:
            close_quietly(conn)
            raise DirectoryUnavailable(f"directory operation failed: {exc}") from exc
        except BaseException:
            close_quietly(conn)
            raise
        self._give_back(conn)
        return result

    def open_bound(self) -> Connection:
        """A new connection bound as the service account, through the circuit: a password AD
        refused once is never sent again (``ldap_circuit``)."""
        s = self._connector.settings
        password = bind_password_of(s)
        return self._circuit.bind(bind_dn=s.bind_dn, password=password,
                                  attempt=lambda: self._bind_new(s.bind_dn, password))

    def _bind_new(self, bind_dn: str, password: str) -> Connection:
        started = perf_counter()
        conn, endpoint = self._connector.open(user=bind_dn, password=password)
        try:
            ok = conn.bind(read_server_info=False)
        except LDAPException as exc:
            close_quietly(conn)
            directory_bound(endpoint.url, started, interrupted=True)
            raise DirectoryUnavailable(f"service bind to {endpoint.url} failed: {exc}") from exc
        directory_bound(endpoint.url, started)
        if not ok:
            close_quietly(conn)
            raise service_bind_failure(endpoint.url, dict(conn.result or {}))
        return conn

    def _take(self) -> tuple[Connection, bool]:
        self._after_fork()
        now = time.monotonic()
        with self._lock:
            while self._idle:
                idle = self._idle.pop()
                if now - idle.since < self.max_idle:
                    return idle.conn, True
                close_quietly(idle.conn)
        return self.open_bound(), False

    def _give_back(self, conn: Connection) -> None:
        with self._lock:
            if self._pid == os.getpid() and len(self._idle) < self._size:
                self._idle.append(_Idle(conn, time.monotonic()))
                return
        close_quietly(conn)

    def clear(self, dispose: Callable[[Connection], None]) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for item in idle:
            dispose(item.conn)

    def _after_fork(self) -> None:
        if self._pid != os.getpid():
            self._pid, self._lock, self._idle = os.getpid(), threading.Lock(), []
