"""``LdapDirectory``: Active Directory over verified TLS (ldap3), issue 3.

A login is: the service account finds the user by one escaped filter (RFC 4515), then exactly
one simple bind as the user's DN checks the password (RFC 4513 5.1.3), then the service
account reads transitive groups with LDAP_MATCHING_RULE_IN_CHAIN (MS-ADTS 3.1.1.3.4.4.3).
A failed bind is final: it is never repeated, not on another DC either, so authgate can never
multiply a user's bad-password count into a lockout.
"""
from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from time import perf_counter
from typing import Any

from ldap3 import BASE, SUBTREE, Connection
from ldap3.core.exceptions import LDAPException
from ldap3.utils.conv import escape_filter_chars

from authgate.config.settings import LdapDirectorySettings
from authgate.core.clock import Clock, SystemClock
from authgate.core.errors import (
    AuthenticationFailed,
    AuthgateError,
    DirectoryUnavailable,
    PasswordChangeRejected,
)
from authgate.core.metrics import directory_bound
from authgate.core.values import Identity
from authgate.directory.ldap_circuit import ServiceBindCircuit, local_circuit
from authgate.directory.ldap_conn import Connector, ServicePool, close_quietly
from authgate.directory.ldap_diag import Diagnosis, diagnose
from authgate.directory.ldap_search import search_users
from authgate.directory.ldap_states import (
    UNAVAILABLE_RESULTS,
    account_state,
    bind_failure,
    guid_text,
    interval,
    parse_login_name,
    password_change_failure,
)
from authgate.directory.roles import AccountStatus, UserMatch

__all__ = ["AccountStatus", "Diagnosis", "LdapDirectory", "LdapDirectorySettings"]

IN_CHAIN = "1.2.840.113556.1.4.1941"  # LDAP_MATCHING_RULE_IN_CHAIN
COMPUTED = "msDS-User-Account-Control-Computed"
USER_ATTRIBUTES = ["sAMAccountName", "userPrincipalName", "displayName", "mail",
                   "userAccountControl", COMPUTED, "pwdLastSet", "accountExpires", "objectGUID"]


@dataclass(frozen=True)
class _User:
    dn: str
    attrs: dict[str, list[Any]]


class LdapDirectory:
    """``Directory`` backed by Active Directory. Thread-safe and fork-safe.

    Plays every optional role (``authgate.directory.roles``): account status, password
    change, the domain lockout policy and login-name canonicalisation."""

    def __init__(self, *, settings: LdapDirectorySettings, clock: Clock | None = None,
                 name: str = "ldap", circuit: ServiceBindCircuit | None = None) -> None:
        self.settings = settings
        self.name = name
        self._clock = clock or SystemClock()
        # refuses unsafe settings and builds the TLS context: a bad CA file fails here
        self._connector = Connector(settings)
        #: every service bind passes it (issue 15); composition shares it between processes
        self.circuit = circuit or local_circuit()
        self._pool = ServicePool(self._connector, self.circuit)

    # -- Directory contract ----------------------------------------------------------------
    def authenticate(self, *, username: str, password: str) -> Identity:
        """One bind as the user's DN. Raises ``AuthenticationFailed`` (a subclass names the
        account state) or ``DirectoryUnavailable``."""
        if not password:  # an empty simple bind is an anonymous success (RFC 4513 5.1.2)
            raise AuthenticationFailed("empty_password")
        user = self._find(username)
        if user is None:
            raise AuthenticationFailed("unknown_user")
        self._bind_once(dn=user.dn, password=password)
        return self._identity(user)

    def timing_probe(self) -> None:
        """A failed login's work without its victim: a search for a name no account has,
        then one bind as a DN no account has, which the DC refuses (52e) and counts against
        nobody. Its duration seeds the failure floor at start (issue 15 item 9)."""
        name = f"authgate-timing-probe-{secrets.token_hex(8)}"
        self._find(name)
        try:
            self._bind_once(dn=f"CN={name},{self.settings.base_dn}",
                            password=secrets.token_urlsafe(24))
        except AuthgateError:
            return

    def lookup(self, username: str) -> Identity | None:
        """The identity of an account that may keep a session (not disabled, locked or
        expired), with current groups; None otherwise. Raises ``DirectoryUnavailable``."""
        status = self.account_status(username)
        if status is None or not status.state.may_keep_session:
            return None
        return status.identity

    def check(self) -> None:
        """A cheap base search on a bound service connection."""
        def probe(conn: Connection) -> None:
            conn.search(self.settings.base_dn, "(objectClass=*)", BASE, attributes=["1.1"])
            _require_ok(conn, "health check")
        self._pool.run(probe)

    # -- beyond the contract ------------------------------------------------------------------
    def account_status(self, username: str) -> AccountStatus | None:
        """Identity, groups and precise state (for session freshness, audit and the CLI)."""
        user = self._find(username)
        if user is None:
            return None
        if not user.attrs.get(COMPUTED):  # some AD versions construct it for base scope only
            user = self._read(user.dn) or user
        state = account_state(
            user_account_control=_int(user.attrs, "userAccountControl"),
            computed=_int(user.attrs, COMPUTED),
            pwd_last_set=_int_or_none(user.attrs, "pwdLastSet"),
            account_expires=_int_or_none(user.attrs, "accountExpires"),
            now=self._clock.now(),
        )
        return AccountStatus(self._identity(user), state, user.dn)

    def change_password(self, *, username: str, old_password: str, new_password: str) -> None:
        """Change a password with the old one (delete old + add new in one modify,
        MS-ADTS 3.1.1.3.1.5.2), as an expired or must-change user cannot bind.

        Raises ``PasswordChangeRejected`` (message safe to show), ``AuthenticationFailed``
        (wrong old password: counts as a failed attempt in AD), or ``DirectoryUnavailable``.
        """
        if not old_password:  # ldap3 turns an empty old password into an administrative reset
            raise AuthenticationFailed("empty_password")
        if not new_password:
            raise PasswordChangeRejected("Enter a new password.")
        user = self._find(username)
        if user is None:
            raise AuthenticationFailed("unknown_user")
        conn = self._pool.open_bound()  # a fresh connection: the modify is sent exactly once
        try:
            ok = conn.extend.microsoft.modify_password(user.dn, new_password, old_password)
            result = dict(conn.result or {})
        except LDAPException as exc:
            raise DirectoryUnavailable(f"password change interrupted: {exc}") from exc
        finally:
            close_quietly(conn)
        if ok is not True:
            raise password_change_failure(result)

    def domain_lockout_policy(self) -> tuple[int, timedelta]:
        """(lockoutThreshold, lockOutObservationWindow) of the domain (MS-ADTS 3.1.1.5.3)."""
        def read(conn: Connection) -> tuple[int, timedelta]:
            conn.search("", "(objectClass=*)", BASE, attributes=["defaultNamingContext"])
            _require_ok(conn, "rootDSE")
            root = _entries(conn)[0].attrs.get("defaultNamingContext") or [self.settings.base_dn]
            conn.search(str(root[0]), "(objectClass=*)", BASE,
                        attributes=["lockoutThreshold", "lockOutObservationWindow"])
            _require_ok(conn, "domain policy")
            attrs = _entries(conn)[0].attrs
            window = interval(_int(attrs, "lockOutObservationWindow"))
            return _int(attrs, "lockoutThreshold"), window
        return self._pool.run(read)

    def canonical_login_name(self, name: str) -> str:
        """AD accepts ``alice``, ``alice@city.test`` and ``CITY\\alice`` for one account."""
        s = self.settings
        parsed = parse_login_name(name, upn_suffix=s.upn_suffix, netbios_domain=s.netbios_domain)
        return parsed or name.strip().lower()

    def search_users(self, text: str, *, limit: int) -> list[UserMatch]:
        """Accounts by login-name prefix or display-name part (``ldap_search``)."""
        return search_users(self._pool.run, self.settings, text, limit=limit)

    def diagnose(self) -> Diagnosis:
        """Every configured DC, tried in turn: service bind, TLS details, timings."""
        return diagnose(self._connector, self.settings, self.circuit)

    def reset_service_bind(self) -> int:
        """The operator's reset: forget AD's refusals of the service password."""
        return self.circuit.reset(self.settings.bind_dn)

    def close(self) -> None:
        self._pool.clear(close_quietly)

    # -- internals --------------------------------------------------------------------------
    def _find(self, username: str) -> _User | None:
        s = self.settings
        name = parse_login_name(username, upn_suffix=s.upn_suffix, netbios_domain=s.netbios_domain)
        if name is None:
            return None
        value = f"{name}@{s.upn_suffix}" if s.login_attribute == "userPrincipalName" else name
        flt = (f"(&(objectCategory=person)(objectClass=user)"
               f"({s.login_attribute}={escape_filter_chars(value)}))")

        def search(conn: Connection) -> list[_User]:
            conn.search(s.user_base_dn or s.base_dn, flt, SUBTREE, attributes=USER_ATTRIBUTES,
                        size_limit=2)
            if conn.result.get("result") not in (0, 4):  # 4: sizeLimitExceeded = ambiguous
                _require_ok(conn, "user search")
            return _entries(conn)
        found = self._pool.run(search)
        if len(found) > 1:
            raise AuthenticationFailed("ambiguous_user", f"{len(found)} entries match")
        return found[0] if found else None

    def _read(self, dn: str) -> _User | None:
        def read(conn: Connection) -> list[_User]:
            conn.search(dn, "(objectClass=user)", BASE, attributes=USER_ATTRIBUTES)
            return _entries(conn)
        found = self._pool.run(read)
        return found[0] if found else None

    def _bind_once(self, *, dn: str, password: str) -> None:
        """Exactly one bind. Failover happens while opening, before the password is sent."""
        started = perf_counter()
        conn, endpoint = self._connector.open(user=dn, password=password)
        try:
            ok = conn.bind(read_server_info=False)
            result = dict(conn.result or {})
        except LDAPException as exc:  # sent or not, never resent: the attempt is over
            directory_bound(endpoint.url, started, interrupted=True)
            raise DirectoryUnavailable(f"bind to {endpoint.url} interrupted: {exc}") from exc
        finally:
            close_quietly(conn)
        directory_bound(endpoint.url, started)
        if not ok:
            raise bind_failure(result)

    def _groups(self, dn: str) -> frozenset[str]:
        s = self.settings
        attr = s.group_name_attribute
        flt = f"(&(objectClass=group)(member:{IN_CHAIN}:={escape_filter_chars(dn)}))"

        def search(conn: Connection) -> frozenset[str]:
            names: set[str] = set()
            for user in _paged(conn, s.group_base_dn or s.base_dn, flt, [attr]):
                values = user.attrs.get(attr) or []
                if values:
                    names.add(str(values[0]))
            return frozenset(names)
        return self._pool.run(search)

    def _identity(self, user: _User) -> Identity:
        a = user.attrs
        sam = str(_first(a, "sAMAccountName"))
        guid = _first(a, "objectGUID")
        return Identity(
            username=sam.lower(), display_name=str(_first(a, "displayName") or sam),
            email=str(_first(a, "mail") or ""), groups=self._groups(user.dn),
            stable_id=guid_text(guid) if isinstance(guid, bytes) and len(guid) == 16 else "",
            source="ldap", password_set_at=_pwd_last_set(a),
        )


def _pwd_last_set(attrs: dict[str, list[Any]]) -> str:
    """``pwdLastSet`` (MS-ADA3: FILETIME of the last set; 0 = must change at next logon) as
    an opaque stamp: a reset, a change or "must change" moves it."""
    value = _int_or_none(attrs, "pwdLastSet")
    return "" if value is None else str(value)


def _paged(conn: Connection, base: str, flt: str, attrs: list[str]) -> Iterator[_User]:
    """Simple paged results (RFC 2696): AD caps one answer at MaxPageSize (1000)."""
    cookie: Any = None
    while True:
        conn.search(base, flt, SUBTREE, attributes=attrs, paged_size=500, paged_cookie=cookie)
        _require_ok(conn, "group search")
        yield from _entries(conn)
        control = (conn.result.get("controls") or {}).get("1.2.840.113556.1.4.319") or {}
        cookie = (control.get("value") or {}).get("cookie")
        if not cookie:
            return


def _entries(conn: Connection) -> list[_User]:
    """Entries only (AD adds continuation references); raw values keep objectGUID bytes."""
    found = []
    for item in conn.response or []:
        if item.get("type") == "searchResEntry":
            attrs = {k: list(v) for k, v in (item.get("attributes") or {}).items()}
            raw = item.get("raw_attributes") or {}
            if raw.get("objectGUID"):
                attrs["objectGUID"] = list(raw["objectGUID"])
            found.append(_User(str(item.get("dn")), attrs))
    return found


def _require_ok(conn: Connection, what: str) -> None:
    result = conn.result or {}
    code = result.get("result")
    if code == 0:
        return
    detail = f"{what}: {result.get('description')} {result.get('message', '')}".strip()
    if code in UNAVAILABLE_RESULTS or code is None:
        raise DirectoryUnavailable(detail)
    raise DirectoryUnavailable(
        f"unexpected answer, check base DNs and the service account; {detail}")


def _first(attrs: dict[str, list[Any]], name: str) -> Any:
    values = attrs.get(name) or []
    return values[0] if values else None


def _int_or_none(attrs: dict[str, list[Any]], name: str) -> int | None:
    value = _first(attrs, name)
    if value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _int(attrs: dict[str, list[Any]], name: str) -> int:
    return _int_or_none(attrs, name) or 0

