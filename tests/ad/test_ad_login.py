"""Each account state, login name forms, identity and groups, against the real DC."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest

from authgate.core.errors import (
    AccountDisabled,
    AccountExpired,
    AuthenticationFailed,
    PasswordExpired,
    PasswordMustChange,
)
from authgate.directory.ldap import LdapDirectory
from authgate.directory.ldap_states import AccountState

pytestmark = pytest.mark.integration
GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


@pytest.mark.parametrize("name", ["alice", "ALICE", " alice ", "alice@city.test",
                                  "Alice@CITY.TEST", "CITY\\alice", "city\\Alice"])
def test_login_names_normalise_to_one_identity(directory: LdapDirectory, ad, name: str) -> None:
    identity = directory.authenticate(username=name, password=ad.password("alice"))
    assert identity.username == "alice"
    assert identity.source == "ldap"
    assert identity.display_name == "Alice Example"
    assert identity.email == "alice@city.test"
    assert GUID.match(identity.stable_id)
    assert identity == directory.lookup("alice")


@pytest.mark.parametrize("name", ["alice@other.test", "OTHER\\alice", "alice@", "\\alice",
                                  "CITY\\", "@city.test", "", "   "])
def test_other_domains_and_malformed_names_are_unknown(directory: LdapDirectory, ad, name) -> None:
    with pytest.raises(AuthenticationFailed) as info:
        directory.authenticate(username=name, password=ad.password("alice"))
    assert info.value.reason == "unknown_user"
    assert directory.lookup(name) is None


def test_groups_are_transitive(directory: LdapDirectory, ad) -> None:
    alice = directory.authenticate(username="alice", password=ad.password("alice"))
    assert {"IT-Dept", "City-Staff"} <= alice.groups  # IT-Dept is nested in City-Staff
    bob = directory.authenticate(username="bob", password=ad.password("bob"))
    assert "City-Staff" in bob.groups and "IT-Dept" not in bob.groups
    adam = directory.authenticate(username="adam", password=ad.password("adam"))
    assert "authgate-admins" in adam.groups
    assert "authgate-auditors" in directory.lookup("audrey").groups


def test_group_search_escapes_the_users_dn(directory: LdapDirectory, ad) -> None:
    """pat's CN is 'Pat (Ops)* O\\, Brien': unescaped it would break the IN_CHAIN filter."""
    pat = directory.authenticate(username="pat", password=ad.password("pat"))
    assert {"IT-Dept", "City-Staff"} <= pat.groups


def test_group_name_attribute_is_configurable(make_directory, ad) -> None:
    d = make_directory(group_name_attribute="sAMAccountName")
    assert {"IT-Dept", "City-Staff"} <= d.lookup("alice").groups


def test_login_by_user_principal_name(make_directory, ad) -> None:
    d = make_directory(login_attribute="userPrincipalName")
    for name in ("alice", "alice@city.test", "CITY\\alice"):
        assert d.authenticate(username=name, password=ad.password("alice")).username == "alice"


@pytest.mark.parametrize(("user", "error", "reason"), [
    ("carol", AccountDisabled, "account_disabled"),
    ("frank", AccountExpired, "account_expired"),
    ("grace", PasswordExpired, "password_expired"),
])
def test_account_states_from_the_bind(directory: LdapDirectory, ad, user, error, reason) -> None:
    with pytest.raises(error) as info:
        directory.authenticate(username=user, password=ad.password(user))
    assert info.value.reason == reason
    assert "data " in str(info.value)  # the precise AD sub-code travels to the audit log


@pytest.mark.parametrize("user", ["carol", "frank", "grace"])
def test_states_need_the_right_password(directory: LdapDirectory, user: str) -> None:
    """A wrong password on a disabled/expired account says only 'invalid credentials' (52e)."""
    with pytest.raises(AuthenticationFailed) as info:
        directory.authenticate(username=user, password="wrong-password")
    assert type(info.value) is AuthenticationFailed and info.value.reason == "invalid_credentials"


def test_must_change_state_from_the_bind(make_directory, ad) -> None:
    d = make_directory()
    # erin may already have changed her password in test_ad_password; then the state is gone
    if d.account_status("erin").state is AccountState.PASSWORD_MUST_CHANGE:
        with pytest.raises(PasswordMustChange):
            d.authenticate(username="erin", password=ad.password("erin"))


def test_wrong_password_and_unknown_user(directory: LdapDirectory, ad) -> None:
    with pytest.raises(AuthenticationFailed) as wrong:
        directory.authenticate(username="user01", password="not-the-password")
    assert type(wrong.value) is AuthenticationFailed and wrong.value.reason == "invalid_credentials"
    assert "data 52e" in str(wrong.value)
    with pytest.raises(AuthenticationFailed) as unknown:
        directory.authenticate(username="nobody", password="whatever")
    assert type(unknown.value) is AuthenticationFailed and unknown.value.reason == "unknown_user"


def test_empty_password_never_binds(directory: LdapDirectory, admin) -> None:
    """An empty simple bind is an anonymous *success* (RFC 4513 5.1.2): refused first."""
    before = admin.bad_password_count("user02")
    with pytest.raises(AuthenticationFailed) as info:
        directory.authenticate(username="user02", password="")
    assert info.value.reason == "empty_password"
    assert admin.bad_password_count("user02") == before


@pytest.mark.parametrize(("user", "state", "keeps_session"), [
    ("alice", AccountState.ACTIVE, True),
    ("carol", AccountState.DISABLED, False),
    ("frank", AccountState.ACCOUNT_EXPIRED, False),
    ("grace", AccountState.PASSWORD_EXPIRED, True),
])
def test_lookup_reads_state_from_attributes(directory: LdapDirectory, user, state, keeps_session):
    status = directory.account_status(user)
    assert status is not None and status.state is state
    assert (directory.lookup(user) is not None) is keeps_session


def test_check_and_domain_lockout_policy(directory: LdapDirectory) -> None:
    directory.check()
    assert directory.domain_lockout_policy() == (3, timedelta(minutes=30))


def test_diagnose_reports_tls_and_dc(directory: LdapDirectory) -> None:
    diagnosis = directory.diagnose()
    assert diagnosis.ok and diagnosis.answered_by == directory.settings.urls[0]
    (dc,) = diagnosis.endpoints
    assert dc.tls_version in ("TLSv1.2", "TLSv1.3") and dc.cipher
    assert dc.dc_host == "dc1.city.test"
    print(f"\ndiagnose: connect {dc.connect_ms} ms, bind {dc.bind_ms} ms, search {dc.search_ms} ms")
