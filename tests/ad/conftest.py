"""Fixtures on the session's real Samba AD DC (``ad``, tests/fixtures/samba_session.py: one
DC per session, ports 389/636 are fixed): ad → ldap_settings → directory, plus ``admin``
for reading what the DC recorded."""
from __future__ import annotations

import ssl
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest
from ldap3 import BASE, NONE, Connection, Server, Tls

from authgate.config.settings import LdapDirectorySettings, Secret
from authgate.directory.ldap import LdapDirectory
from tests.ad.samba import DcFacts
from tests.ad.web_helpers import DcAdmin, ad_app


@pytest.fixture(scope="session")
def ldap_settings(ad: DcFacts) -> LdapDirectorySettings:
    return LdapDirectorySettings(
        urls=(ad.ldaps_url,), base_dn=ad.base_dn, bind_dn=ad.bind_dn,
        bind_password=Secret(ad.bind_password), ca_file=ad.ca_file, upn_suffix=ad.upn_suffix,
        netbios_domain=ad.domain,
    )


@pytest.fixture(scope="session")
def directory(ldap_settings: LdapDirectorySettings) -> Iterator[LdapDirectory]:
    d = LdapDirectory(settings=ldap_settings)
    yield d
    d.close()


@pytest.fixture
def make_directory(ldap_settings: LdapDirectorySettings) -> Iterator[Callable[..., LdapDirectory]]:
    """An LdapDirectory with some settings changed; closed after the test."""
    made: list[LdapDirectory] = []

    def make(**changes: Any) -> LdapDirectory:
        made.append(LdapDirectory(settings=replace(ldap_settings, **changes)))
        return made[-1]
    yield make
    for d in made:
        d.close()


class Admin:
    """The domain Administrator over LDAPS: reads and resets what the tests provoke.
    A new connection per call, so it survives the DC restart in test_ad_resilience."""

    def __init__(self, ad: DcFacts) -> None:
        tls = Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=ad.ca_file)
        self.server = Server("localhost", port=636, use_ssl=True, tls=tls, get_info=NONE)
        self.ad = ad

    def _conn(self) -> Connection:
        return Connection(self.server, self.ad.admin_dn, self.ad.admin_password, auto_bind=True)

    def _dn(self, conn: Connection, sam: str) -> str:
        conn.search(self.ad.base_dn, f"(sAMAccountName={sam})", attributes=["1.1"])
        return next(e["dn"] for e in conn.response if e["type"] == "searchResEntry")

    def attribute(self, sam: str, name: str) -> Any:
        conn = self._conn()
        try:
            conn.search(self._dn(conn, sam), "(objectClass=*)", BASE, attributes=[name])
            values = conn.response[0]["attributes"].get(name)
        finally:
            conn.unbind()
        return values[0] if isinstance(values, list) and values else values

    def bad_password_count(self, sam: str) -> int:
        return int(self.attribute(sam, "badPwdCount") or 0)

    def unlock(self, sam: str) -> None:
        conn = self._conn()
        try:
            conn.modify(self._dn(conn, sam), {"lockoutTime": [("MODIFY_REPLACE", ["0"])]})
            assert conn.result["result"] == 0, conn.result
        finally:
            conn.unbind()


@pytest.fixture(scope="session")
def admin(ad: DcFacts) -> Admin:
    return Admin(ad)


@pytest.fixture(scope="module")
def dc_admin(ad) -> DcAdmin:  # type: ignore[no-untyped-def]
    return DcAdmin(ad)


@pytest.fixture
def web(tmp_path, ad, clock):  # type: ignore[no-untyped-def]
    """(app, services) over the real DC, a fresh database per test."""
    app, services = ad_app(tmp_path, ad, clock)
    yield app, services
    services.directory.close()
