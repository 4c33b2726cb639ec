"""Password change with the old password: AD's policy errors come back as plain messages."""
from __future__ import annotations

import pytest

from authgate.core.errors import AuthenticationFailed, PasswordChangeRejected, PasswordMustChange
from authgate.directory.ldap import LdapDirectory

pytestmark = pytest.mark.integration
NEW_PASSWORD = "Erin-New-Pass-2025!"


@pytest.mark.parametrize(("new", "says"), [
    ("Sh0rt!", "too short"),
    ("alllowercaseletters", "not complex enough"),
])
def test_policy_rejections_are_plain(directory: LdapDirectory, ad, new: str, says: str) -> None:
    with pytest.raises(PasswordChangeRejected) as info:
        directory.change_password(username="user19", old_password=ad.password("user19"),
                                  new_password=new)
    assert says in str(info.value)
    assert "0000052D" not in str(info.value)  # no raw directory codes for users


def test_wrong_old_password_is_a_failed_attempt(directory: LdapDirectory, admin) -> None:
    before = admin.bad_password_count("user20")
    with pytest.raises(AuthenticationFailed) as info:
        directory.change_password(username="user20", old_password="wrong-old",
                                  new_password="Valid-New-Pass-1!")
    assert info.value.reason == "invalid_credentials"
    assert admin.bad_password_count("user20") == before + 1  # exactly one attempt


def test_empty_old_password_is_never_a_reset(directory: LdapDirectory, ad) -> None:
    """ldap3 sends an administrative *reset* when old_password is empty: refused first."""
    with pytest.raises(AuthenticationFailed):
        directory.change_password(username="user18", old_password="", new_password="Xy-Pass-2025!")
    assert directory.authenticate(username="user18", password=ad.password("user18"))


def test_must_change_user_changes_then_logs_in(directory: LdapDirectory, ad) -> None:
    with pytest.raises(PasswordMustChange):
        directory.authenticate(username="erin", password=ad.password("erin"))
    directory.change_password(username="CITY\\erin", old_password=ad.password("erin"),
                              new_password=NEW_PASSWORD)
    identity = directory.authenticate(username="erin", password=NEW_PASSWORD)
    assert identity.username == "erin"
