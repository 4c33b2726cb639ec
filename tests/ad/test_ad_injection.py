"""LDAP injection (RFC 4515 metacharacters, NUL, backslash) never authenticates or matches."""
from __future__ import annotations

import pytest

from authgate.core.errors import AuthenticationFailed
from authgate.directory.ldap import LdapDirectory

pytestmark = pytest.mark.integration

ATTACKS = [
    "*", "a*", "*e", "al*ce", "*)(", ")(", "(", ")", "alice)(|(cn=*", "alice)(|(sAMAccountName=*",
    "*)(objectClass=*", "alice)(objectClass=*)", "alice\x00", "\x00", "alice\x00bob", "\\",
    "alice\\", "\\2a", "\\61lice", "CITY\\*", "*@city.test", "CITY\\alice)(cn=*",
    "alice*@city.test",
    "*)(&", "alice))%00",
]


@pytest.mark.parametrize("name", ATTACKS)
def test_injection_never_authenticates(directory: LdapDirectory, ad, name: str) -> None:
    # The right password for every seeded user: a filter matching anyone would log in.
    with pytest.raises(AuthenticationFailed) as info:
        directory.authenticate(username=name, password=ad.password("alice"))
    assert info.value.reason == "unknown_user"


@pytest.mark.parametrize("name", ATTACKS)
def test_injection_never_matches_on_lookup(directory: LdapDirectory, name: str) -> None:
    assert directory.account_status(name) is None


def test_escaped_value_is_matched_literally(directory: LdapDirectory) -> None:
    """'\\61lice' would be 'alice' if passed unescaped into the filter."""
    assert directory.lookup("alice") is not None
    assert directory.lookup("\\61lice") is None
