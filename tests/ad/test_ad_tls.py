"""TLS is required and verified: plain LDAP refused, StartTLS works, wrong CA or name fails."""
from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest

from authgate.config.settings import LdapDirectorySettings
from authgate.core.errors import DirectoryUnavailable
from authgate.directory.ldap import LdapDirectory
from authgate.directory.ldap_conn import Connector, close_quietly

pytestmark = pytest.mark.integration


def test_plain_ldap_refused_at_construction(ldap_settings: LdapDirectorySettings,
                                            ad) -> None:
    from dataclasses import replace
    with pytest.raises(ValueError, match="plain LDAP"):
        LdapDirectory(settings=replace(ldap_settings, urls=(ad.ldap_url,)))
    with pytest.raises(ValueError, match="plain LDAP"):  # one plain URL among TLS ones is enough
        LdapDirectory(settings=replace(ldap_settings, urls=(ad.ldaps_url, ad.ldap_url)))


def test_plain_ldap_when_allowed_meets_samba_refusal(make_directory, ad) -> None:
    """allow_plain is for labs; Samba itself refuses simple binds without TLS."""
    d = make_directory(urls=(ad.ldap_url,), allow_plain=True)
    with pytest.raises(DirectoryUnavailable, match="strongerAuthRequired|Transport encryption"):
        d.check()


def test_start_tls_on_389(make_directory, ad) -> None:
    d = make_directory(urls=(ad.ldap_url,), start_tls=True)
    assert d.authenticate(username="alice", password=ad.password("alice")).username == "alice"
    (dc,) = d.diagnose().endpoints
    assert dc.ok and dc.tls_version.startswith("TLSv1.")


def test_tls13_minimum(make_directory, ad) -> None:
    d = make_directory(min_tls="TLSv1.3")
    assert d.diagnose().endpoints[0].tls_version == "TLSv1.3"


@pytest.fixture(scope="module")
def other_ca(tmp_path_factory: pytest.TempPathFactory) -> str:
    d = tmp_path_factory.mktemp("other-ca")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "1", "-subj", "/CN=other CA",
                    "-keyout", str(d / "ca.key"), "-out", str(d / "ca.pem")],
                   check=True, capture_output=True)
    return str(d / "ca.pem")


def test_wrong_ca_is_unavailable(make_directory, ad, admin, other_ca: str) -> None:
    d = make_directory(ca_file=other_ca)
    before = admin.bad_password_count("user03")
    with pytest.raises(DirectoryUnavailable, match="CERTIFICATE_VERIFY_FAILED"):
        d.authenticate(username="user03", password="wrong")
    with pytest.raises(DirectoryUnavailable):
        d.check()
    assert not d.diagnose().ok
    assert admin.bad_password_count("user03") == before  # nothing reached the DC


def test_name_not_in_certificate_is_unavailable(make_directory, ad) -> None:
    """The cert names localhost, 127.0.0.1 and ::1; '::ffff:127.0.0.1' reaches the same DC
    under a name the certificate does not carry, so host name checking must refuse it."""
    d = make_directory(urls=("ldaps://[::ffff:127.0.0.1]:636",))
    with pytest.raises(DirectoryUnavailable, match="mismatch"):
        d.check()
    assert make_directory(urls=("ldaps://127.0.0.1:636", "ldaps://[::1]:636")).diagnose().ok


def test_missing_ca_file_refused_at_construction(ldap_settings: LdapDirectorySettings,
                                                 tmp_path: Path) -> None:
    from dataclasses import replace
    with pytest.raises(ValueError, match="ca_file"):
        LdapDirectory(settings=replace(ldap_settings, ca_file=str(tmp_path / "missing.pem")))
    with pytest.raises(ValueError, match="ca_file"):
        LdapDirectory(settings=replace(ldap_settings, ca_file=""))


def test_sockets_have_tcp_nodelay(ldap_settings: LdapDirectorySettings) -> None:
    conn, _ = Connector(ldap_settings).open()
    try:
        assert conn.socket.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
        assert conn.socket.version() in ("TLSv1.2", "TLSv1.3")
    finally:
        close_quietly(conn)
