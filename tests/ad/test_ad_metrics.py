"""Directory metrics against the real Samba AD DC (#18 item 1, docs/metrics.md): every bind
is timed under the configured DC URL, a wrong password is an answer and not an outage, and a
DC that does not answer is counted as unreachable and shown down while the other serves."""
from __future__ import annotations

import dataclasses

import pytest
from prometheus_client import REGISTRY

from authgate.config.settings import LdapDirectorySettings
from authgate.core.errors import AuthenticationFailed
from authgate.directory.ldap import LdapDirectory
from tests.fixtures.net import free_port

pytestmark = pytest.mark.integration


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_binds_are_timed_by_dc_and_a_wrong_password_is_no_error(
        ldap_settings: LdapDirectorySettings, ad) -> None:  # type: ignore[no-untyped-def]
    dead = f"ldaps://127.0.0.1:{free_port()}"  # nothing listens: refused at once
    live = ldap_settings.urls[0]
    directory = LdapDirectory(settings=dataclasses.replace(ldap_settings, urls=(dead, live)))
    binds = sample("authgate_directory_bind_duration_seconds_count", server=live)
    errors = sample("authgate_directory_errors_total", server=live, kind="unreachable")
    try:
        directory.authenticate(username="user01", password=ad.password("user01"))
        with pytest.raises(AuthenticationFailed):
            directory.authenticate(username="user01", password="not-the-password")
    finally:
        directory.close()
    assert sample("authgate_directory_bind_duration_seconds_count", server=live) >= binds + 2
    assert sample("authgate_directory_bind_duration_seconds_sum", server=live) > 0
    assert sample("authgate_directory_errors_total", server=live, kind="unreachable") == errors
    assert sample("authgate_directory_up", server=live) == 1
    assert sample("authgate_directory_errors_total", server=dead, kind="unreachable") >= 1
    assert sample("authgate_directory_up", server=dead) == 0
