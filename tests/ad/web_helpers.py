"""Helpers for driving authgate's real pages against the session's Samba AD DC.

``ad_app`` builds the whole app (build_services + create_app) with an LDAP configuration
pointing at the DC (LDAPS, the DC's own CA, ``group_base_dn`` set); ``WebUser`` logs in
through the real form with its CSRF token, as a browser behind the trusted proxy
(127.0.0.1) would, with its own client address in X-Forwarded-For so that brute-force
regulation counts each scenario separately; ``DcAdmin`` changes what AD says (as the
domain Administrator) and puts it back.
"""
from __future__ import annotations

import json
import re
import ssl
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ldap3 import BASE, NONE, Connection, Server, Tls
from sqlalchemy import select

from authgate.composition.root import Services, build_services
from authgate.core.clock import FixedClock
from authgate.directory.file import FileDirectory
from authgate.storage.engine import migrate
from authgate.storage.tables import audit_events
from tests.ad.samba import DcFacts
from tests.conftest import FAST_HASHER, make_settings, verify_headers
from tests.fixtures.net import CSRF_FIELD as _CSRF

GENERIC_FAILURE = "The username or password is incorrect."
CONTACT_IT = "contact the IT service desk"
UNAVAILABLE = "unavailable"
APP_URL = "http://localhost:8080/x"
BREAK_GLASS_USER = "breakglass-1"
BREAK_GLASS_PASSWORD = "break glass only in an emergency"


def ldap_config(ad: DcFacts, **overrides: Any) -> dict[str, Any]:
    """``directory.ldap`` as an operator would write it for the test DC."""
    config: dict[str, Any] = {
        "urls": [ad.ldaps_url], "base_dn": ad.base_dn, "bind_dn": ad.bind_dn,
        "bind_password_file": ad.bind_password_file, "ca_file": ad.ca_file,
        "upn_suffix": ad.upn_suffix, "netbios_domain": ad.domain,
        "group_base_dn": ad.group_base_dn, "connect_timeout": 1.0,
    }
    config.update(overrides)
    return config


def break_glass_file(tmp_path: Path) -> Path:
    path = tmp_path / "break-glass.yaml"
    FileDirectory(path, hasher=FAST_HASHER).add_user(
        BREAK_GLASS_USER, BREAK_GLASS_PASSWORD, display_name="Break-glass 1",
        groups=["authgate-admins"])
    return path


def ad_app(tmp_path: Path, ad: DcFacts, clock: FixedClock, *, break_glass: Path | None = None,
           **ldap_overrides: Any) -> tuple[Any, Services]:
    """The real app over the real DC; each call gets its own database under ``tmp_path``."""
    from authgate.web import create_app

    tmp_path.mkdir(parents=True, exist_ok=True)
    users = tmp_path / "unused-users.yaml"  # make_settings wants one; backend is ldap
    directory: dict[str, Any] = {"backend": "ldap", "ldap": ldap_config(ad, **ldap_overrides)}
    if break_glass is not None:
        directory["break_glass_file"] = str(break_glass)
    settings = make_settings(tmp_path, users, directory=directory)
    migrate(settings.storage.url)
    services = build_services(settings, clock=clock)
    app = create_app({"services": services, "TESTING": True})
    return app, services


class WebUser:
    """One browser: its own cookie jar and client address (behind the trusted proxy)."""

    def __init__(self, app: Any, ip: str) -> None:
        self.client = app.test_client()
        self.ip = ip

    def _headers(self) -> dict[str, str]:
        return {"X-Forwarded-For": self.ip, "User-Agent": "authgate-ad-web-test"}

    def csrf(self, path: str = "/login") -> str:
        page = self.client.get(path, headers=self._headers())
        if page.status_code in (302, 303):  # signed in already: the logout form has a token
            page = self.client.get("/logout", headers=self._headers())
        match = _CSRF.search(page.get_data(as_text=True))
        assert match, f"no CSRF token on {path}"
        return match.group(1)

    def login(self, username: str, password: str, rd: str = APP_URL) -> Any:
        return self.client.post("/login", headers=self._headers(), data={
            "csrf_token": self.csrf(), "username": username, "password": password, "rd": rd})

    def timed_login(self, username: str, password: str) -> tuple[Any, float]:
        token = self.csrf()
        started = time.perf_counter()
        response = self.client.post("/login", headers=self._headers(), data={
            "csrf_token": token, "username": username, "password": password, "rd": APP_URL})
        return response, (time.perf_counter() - started) * 1000

    def change_password(self, page: Any, *, old: str, new: str, confirm: str | None = None
                        ) -> Any:
        """Submit the change-password form found on ``page`` (its own CSRF token)."""
        html = page.get_data(as_text=True)
        token = _CSRF.search(html)
        username = re.search(r'name="username"[^>]*value="([^"]*)"', html)
        rd = re.search(r'name="rd" value="([^"]*)"', html)
        assert token and username and rd, "not the change-password form"
        return self.client.post("/password/change", headers=self._headers(), data={
            "csrf_token": token.group(1), "username": username.group(1), "old_password": old,
            "new_password": new, "confirm_password": new if confirm is None else confirm,
            "rd": rd.group(1)})

    def verify(self, url: str = APP_URL) -> Any:
        """What nginx's auth_request would ask (it is the trusted peer, 127.0.0.1)."""
        from urllib.parse import urlsplit

        parts = urlsplit(url)
        return self.client.get("/verify", headers=verify_headers(
            parts.path or "/", host=parts.netloc, proto=parts.scheme))

    def has_session_cookie(self) -> bool:
        cookie = self.client.get_cookie("__Host-authgate_session")
        return cookie is not None and bool(cookie.value)


def strip_tokens(html: str) -> str:
    """A page without its per-request values (CSRF token, CSP nonce)."""
    return re.sub(r'(value|nonce|data-csrf)="[^"]*"', "", html)


@dataclass(frozen=True)
class Row:
    event: str
    outcome: str
    reason: str
    username: str
    client_ip: str
    detail: dict[str, Any]


def audit(services: Services, event: str | None = None) -> list[Row]:
    query = select(audit_events).order_by(audit_events.c.id)
    if event is not None:
        query = query.where(audit_events.c.event == event)
    with services.engine.connect() as conn:
        return [Row(r["event"], r["outcome"], r["reason"], r["username"], r["client_ip"],
                    json.loads(r["detail"] or "{}"))
                for r in conn.execute(query).mappings()]


class DcAdmin:
    """The domain Administrator over LDAPS, a new connection per call (survives restarts)."""

    def __init__(self, ad: DcFacts) -> None:
        self.ad = ad
        tls = Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=ad.ca_file)
        self.server = Server("localhost", port=636, use_ssl=True, tls=tls, get_info=NONE,
                             connect_timeout=2)

    @contextmanager
    def conn(self) -> Iterator[Connection]:
        c = Connection(self.server, self.ad.admin_dn, self.ad.admin_password, auto_bind=True,
                       receive_timeout=10)
        try:
            yield c
        finally:
            c.unbind()

    def dn(self, sam: str) -> str:
        with self.conn() as c:
            c.search(self.ad.base_dn, f"(sAMAccountName={sam})", attributes=["1.1"])
            return next(e["dn"] for e in c.response if e["type"] == "searchResEntry")

    def _modify(self, dn: str, changes: dict[str, Any]) -> None:
        with self.conn() as c:
            c.modify(dn, changes)
            assert c.result["result"] == 0, c.result

    def set_uac(self, sam: str, value: int) -> None:
        self._modify(self.dn(sam), {"userAccountControl": [("MODIFY_REPLACE", [str(value)])]})

    def remove_member(self, group: str, sam: str) -> None:
        self._modify(self.dn(group), {"member": [("MODIFY_DELETE", [self.dn(sam)])]})

    def add_member(self, group: str, sam: str) -> None:
        self._modify(self.dn(group), {"member": [("MODIFY_ADD", [self.dn(sam)])]})

    def is_member(self, group: str, sam: str) -> bool:
        with self.conn() as c:
            c.search(self.dn(group), "(objectClass=group)", BASE, attributes=["member"])
            members = c.response[0]["attributes"].get("member") or []
        return self.dn(sam).lower() in {m.lower() for m in members}

    def reset_password(self, sam: str, password: str, *, must_change: bool) -> None:
        """An administrative reset (no old password), then pwdLastSet 0 for must-change."""
        dn = self.dn(sam)
        with self.conn() as c:
            assert c.extend.microsoft.modify_password(dn, password) is True, c.result
            value = "0" if must_change else "-1"
            c.modify(dn, {"pwdLastSet": [("MODIFY_REPLACE", [value])]})
            assert c.result["result"] == 0, c.result

    def unlock(self, sam: str) -> None:
        self._modify(self.dn(sam), {"lockoutTime": [("MODIFY_REPLACE", ["0"])]})

    def attribute(self, sam: str, name: str) -> Any:
        with self.conn() as c:
            c.search(self.dn(sam), "(objectClass=*)", BASE, attributes=[name])
            values = c.response[0]["attributes"].get(name)
        return values[0] if isinstance(values, list) and values else values

    def user_bind(self, sam: str, password: str) -> dict[str, Any]:
        """One simple bind as the user (UPN) straight to the DC, bypassing authgate."""
        c = Connection(self.server, f"{sam}@{self.ad.upn_suffix}", password,
                       receive_timeout=10)
        try:
            c.bind()
            return dict(c.result or {})
        finally:
            c.unbind()


@contextmanager
def dc_stopped(ad: DcFacts) -> Iterator[None]:
    """The session's DC stopped for the block, then started again and answering LDAPS binds
    before the block is left (other AD tests run after this one)."""
    from tests.ad import samba

    samba.stop(ad.dir)
    try:
        yield
    finally:
        restart(ad)


def restart(ad: DcFacts, attempts: int = 3) -> None:
    """Start the session's DC again (the script waits for a verified TLS handshake on 636)
    and wait until it answers searches. A start can fail when the ports are not free yet
    (another DC on this shared machine, a slow exit): wait for them and try again."""
    from tests.ad import samba

    for attempt in range(1, attempts + 1):
        try:
            samba.run_script("start", ad.dir)
            break
        except samba.SambaUnavailable:
            if attempt == attempts:
                raise
            deadline = time.monotonic() + 60
            while samba.ports_in_use() and time.monotonic() < deadline:
                time.sleep(0.5)
    wait_until_answering(ad)


def wait_until_answering(ad: DcFacts, timeout: float = 20.0) -> None:
    admin = DcAdmin(ad)
    deadline = time.monotonic() + timeout
    while True:
        try:
            with admin.conn() as c:
                c.search(ad.base_dn, "(sAMAccountName=alice)", attributes=["1.1"])
                if c.result["result"] == 0 and c.response:
                    return
        except Exception:  # noqa: BLE001 - still starting
            if time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            raise AssertionError("the DC did not answer after being started again")
        time.sleep(0.1)
