"""Pure AD translation helpers (no DC needed). The features themselves are proven against a
real Samba DC in tests/ad; ldap3's mock strategy only feeds the entry parser here."""
from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from ldap3 import MOCK_SYNC, OFFLINE_AD_2012_R2, Connection, Server

from authgate.config.ldap_rules import check_ldap_settings, ldap_problems
from authgate.config.settings import LdapDirectorySettings, Secret
from authgate.core.errors import (
    AccountDisabled,
    AccountExpired,
    AccountLocked,
    AuthenticationFailed,
    DirectoryUnavailable,
    PasswordChangeRejected,
    PasswordExpired,
    PasswordMustChange,
)
from authgate.directory.ldap import LdapDirectory, _entries
from authgate.directory.ldap_states import (
    AccountState,
    account_state,
    bind_failure,
    data_code,
    filetime,
    guid_text,
    interval,
    parse_login_name,
    password_change_failure,
)

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
AD_MESSAGE = ("80090308: LdapErr: DSID-0C0903A9, comment: AcceptSecurityContext error, "
              "data {}, v1db1")


def _bind(code: int, sub: str | None = None) -> dict:
    message = AD_MESSAGE.format(sub) if sub else "something else"
    return {"result": code, "description": "invalidCredentials", "message": message}


@pytest.mark.parametrize(("sub", "cls", "reason"), [
    ("52e", AuthenticationFailed, "invalid_credentials"),
    ("525", AuthenticationFailed, "invalid_credentials"),
    ("533", AccountDisabled, "account_disabled"),
    ("775", AccountLocked, "account_locked"),
    ("701", AccountExpired, "account_expired"),
    ("532", PasswordExpired, "password_expired"),
    ("773", PasswordMustChange, "password_must_change"),
    ("530", AuthenticationFailed, "logon_hours"),
    ("abc", AuthenticationFailed, "invalid_credentials"),
])
def test_bind_sub_codes(sub: str, cls: type, reason: str) -> None:
    error = bind_failure(_bind(49, sub))
    assert type(error) is cls and error.reason == reason


def test_bind_failures_that_mean_unavailable() -> None:
    for code in (51, 52, 8):
        assert isinstance(bind_failure(_bind(code)), DirectoryUnavailable)
    assert bind_failure(_bind(49)).reason == "invalid_credentials"
    assert bind_failure({"result": 53, "message": ""}).reason == "bind_refused"


def test_data_code() -> None:
    assert data_code(AD_MESSAGE.format("52E")) == "52e"
    assert data_code("no code here") is None
    assert data_code("") is None


@pytest.mark.parametrize(("raw", "expected"), [
    ("alice", "alice"), (" Alice ", "alice"), ("alice@city.test", "alice"),
    ("ALICE@CITY.TEST", "alice"), ("CITY\\alice", "alice"), ("city\\ALICE", "alice"),
    ("alice@other.test", None), ("OTHER\\alice", None), ("alice\x00", None), ("", None),
    ("\\", None), ("CITY\\", None), ("CITY\\a\\b", None), ("a@b@city.test", None),
    ("alice)(|(cn=*", "alice)(|(cn=*"),  # passes the parser; escaped by the caller
])
def test_parse_login_name(raw: str, expected: str | None) -> None:
    assert parse_login_name(raw, upn_suffix="city.test", netbios_domain="CITY") == expected


def test_parse_login_name_without_domain_settings() -> None:
    assert parse_login_name("CITY\\alice", upn_suffix="", netbios_domain="") is None
    assert parse_login_name("alice@city.test", upn_suffix="", netbios_domain="") is None


FUTURE = 150_000_000_000_000_000  # FILETIME in 2076


@pytest.mark.parametrize(("uac", "computed", "pls", "expires", "state"), [
    (512, 0, 1, 0x7FFFFFFFFFFFFFFF, AccountState.ACTIVE),
    (512, 0, 1, 0, AccountState.ACTIVE),
    (512, 0, 1, FUTURE, AccountState.ACTIVE),
    (514, 0x10, 1, 0, AccountState.DISABLED),
    (512, 0, 1, 132223104000000000, AccountState.ACCOUNT_EXPIRED),
    (512, 0x10, 1, 0, AccountState.LOCKED),
    (512, 0x800000, 0, 0, AccountState.PASSWORD_MUST_CHANGE),
    (512, 0x800000, 1, 0, AccountState.PASSWORD_EXPIRED),
])
def test_account_state(uac, computed, pls, expires, state) -> None:
    got = account_state(user_account_control=uac, computed=computed, pwd_last_set=pls,
                        account_expires=expires, now=NOW)
    assert got is state


def test_time_helpers() -> None:
    assert filetime(132223104000000000) == datetime(2020, 1, 1, tzinfo=UTC)
    assert interval(-18000000000) == timedelta(minutes=30)
    raw = bytes.fromhex("f16d510861d26a439f6bd5572b73b4f9")
    assert guid_text(raw) == "08516df1-d261-436a-9f6b-d5572b73b4f9"


@pytest.mark.parametrize(("message", "cls", "text"), [
    ("00000056: Constraint violation - check_password_restrictions: The old password specified "
     "doesn't match!", AuthenticationFailed, ""),
    ("0000052D: Constraint violation - check_password_restrictions: the password is too short. "
     "It should be equal or longer than 7 characters!", PasswordChangeRejected, "too short"),
    ("0000052D: Constraint violation - check_password_restrictions: the password does not meet "
     "the complexity criteria!", PasswordChangeRejected, "not complex enough"),
    ("0000052D: Constraint violation - the password was already used (in history)!",
     PasswordChangeRejected, "used before"),
    ("0000052D: SvcErr: DSID-031A120C, problem 5003 (WILL_NOT_PERFORM), data 0",
     PasswordChangeRejected, "password policy"),
])
def test_password_change_failures(message: str, cls: type, text: str) -> None:
    error = password_change_failure({"result": 19, "message": message})
    assert type(error) is cls and text in str(error)
    assert "0000" not in str(error) or cls is AuthenticationFailed


def test_settings_refuse_plain_ldap_and_unsafe_values() -> None:
    good = dict(urls=("ldaps://dc1.city.test",), base_dn="DC=city,DC=test", bind_dn="CN=svc",
                bind_password=Secret("s3cret"), ca_file="/etc/ssl/ca.pem")
    settings = LdapDirectorySettings(**good)
    assert "s3cret" not in repr(settings)
    assert ldap_problems(settings) == []
    bad = [
        {"urls": ("ldap://dc1.city.test",)},
        {"urls": ()},
        {"urls": ("http://dc1",)},
        {"urls": ("ldaps://dc1/DC=city",)},
        {"urls": ("ldaps://dc1:port",)},
        {"bind_password": Secret("")},
        {"bind_password": None},
        {"ca_file": ""},
        {"min_tls": "TLSv1.0"},
        {"login_attribute": "cn"},
        {"login_attribute": "userPrincipalName"},  # needs upn_suffix
        {"group_name_attribute": "cn)(x"},
        {"connect_timeout": 0},
        {"pool_size": 0},
    ]
    for change in bad:
        assert ldap_problems(LdapDirectorySettings(**{**good, **change})), change
        with pytest.raises(ValueError):
            check_ldap_settings(LdapDirectorySettings(**{**good, **change}))
    assert not ldap_problems(LdapDirectorySettings(**{**good, "urls": ("ldap://dc1",),
                                                      "start_tls": True}))
    assert not ldap_problems(LdapDirectorySettings(**{**good, "urls": ("ldap://dc1",),
                                                      "allow_plain": True, "ca_file": ""}))


def test_directory_refuses_unsafe_settings_before_connecting() -> None:
    """The rules hold for settings made in code too, not only for the loaded config."""
    plain = LdapDirectorySettings(urls=("ldap://dc1.city.test",), base_dn="DC=city,DC=test",
                                  bind_dn="CN=svc", bind_password=Secret("s3cret"))
    with pytest.raises(ValueError, match="plain LDAP"):
        LdapDirectory(settings=plain)
    with pytest.raises(ValueError, match="ca_file"):
        LdapDirectory(settings=replace(plain, urls=("ldaps://dc1.city.test",)))


def test_entries_keep_only_entries_and_raw_guid() -> None:
    server = Server("fake", get_info=OFFLINE_AD_2012_R2)
    conn = Connection(server, client_strategy=MOCK_SYNC)
    guid = bytes.fromhex("f16d510861d26a439f6bd5572b73b4f9")
    conn.strategy.add_entry("CN=Alice,DC=city,DC=test", {
        "objectClass": ["top", "user"], "sAMAccountName": "alice", "objectGUID": guid})
    conn.bind()
    conn.search("DC=city,DC=test", "(sAMAccountName=alice)",
                attributes=["sAMAccountName", "objectGUID"])
    (user,) = _entries(conn)
    assert user.dn == "CN=Alice,DC=city,DC=test"
    assert user.attrs["objectGUID"] == [guid]
