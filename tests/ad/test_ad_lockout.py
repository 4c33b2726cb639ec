"""Never a lockout lever: exactly one bind per attempt, even with failover; real lockout."""
from __future__ import annotations

import pytest

from authgate.core.errors import AccountLocked, AuthenticationFailed
from authgate.directory.ldap_states import AccountState

pytestmark = pytest.mark.integration


def test_one_bind_per_attempt_then_locked(make_directory, ad, admin) -> None:
    """A dead DC first and the real DC twice (by name and by address): a retried bind
    would show as a badPwdCount step of 2 or 3."""
    d = make_directory(urls=("ldaps://localhost:1", ad.ldaps_url, "ldaps://127.0.0.1:636"))
    try:
        assert admin.bad_password_count("dave") == 0
        for attempt in (1, 2):
            with pytest.raises(AuthenticationFailed) as info:
                d.authenticate(username="dave", password=f"wrong-{attempt}")
            assert info.value.reason == "invalid_credentials"
            assert admin.bad_password_count("dave") == attempt
        with pytest.raises(AuthenticationFailed):  # the third failure reaches the threshold (3)
            d.authenticate(username="dave", password="wrong-3")
        assert admin.bad_password_count("dave") == 3
        with pytest.raises(AccountLocked) as locked:  # now even the right password: data 775
            d.authenticate(username="dave", password=ad.password("dave"))
        assert locked.value.reason == "account_locked" and "data 775" in str(locked.value)
        assert d.account_status("dave").state is AccountState.LOCKED
        assert d.lookup("dave") is None
    finally:
        admin.unlock("dave")
    assert d.authenticate(username="dave", password=ad.password("dave")).username == "dave"
