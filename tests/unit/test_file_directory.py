"""The file directory: argon2id, disabled accounts, live reload, atomic writes."""
from __future__ import annotations

import pytest

from authgate.core.errors import AccountDisabled, AuthenticationFailed, DirectoryUnavailable
from authgate.directory.file import FileDirectory, NewUser
from tests.conftest import ALICE_PASSWORD, FAST_HASHER


def test_authenticate_and_identity(users_file) -> None:  # type: ignore[no-untyped-def]
    d = FileDirectory(users_file)
    identity = d.authenticate(username=" Alice ", password=ALICE_PASSWORD)
    assert identity.username == "alice" and "IT-Dept" in identity.groups
    assert identity.display_name == "Alice Liddell" and identity.source == "file"
    assert "$argon2id$" in users_file.read_text()
    assert ALICE_PASSWORD not in users_file.read_text()


def test_failures_name_the_precise_reason(users_file) -> None:  # type: ignore[no-untyped-def]
    d = FileDirectory(users_file)
    with pytest.raises(AuthenticationFailed) as wrong:
        d.authenticate(username="alice", password="wrong")
    assert wrong.value.reason == "invalid_credentials"
    with pytest.raises(AuthenticationFailed) as unknown:
        d.authenticate(username="nobody", password="wrong")
    assert unknown.value.reason == "unknown_user"
    with pytest.raises(AccountDisabled):
        d.authenticate(username="carol", password="carol's long password")
    with pytest.raises(AuthenticationFailed) as disabled_wrong:
        d.authenticate(username="carol", password="nope")
    assert disabled_wrong.value.reason == "invalid_credentials"  # no state without the password


def test_changes_seen_without_restart(users_file) -> None:  # type: ignore[no-untyped-def]
    d = FileDirectory(users_file)
    assert d.lookup("bob") is not None
    FileDirectory(users_file, hasher=FAST_HASHER).set_disabled("bob", True)
    assert d.lookup("bob") is None
    FileDirectory(users_file, hasher=FAST_HASHER).set_password("alice", "a new long password")
    d.authenticate(username="alice", password="a new long password")


def test_broken_file_is_unavailable_not_open(users_file) -> None:  # type: ignore[no-untyped-def]
    d = FileDirectory(users_file)
    users_file.write_text("users: [broken")
    with pytest.raises(DirectoryUnavailable):
        d.authenticate(username="alice", password=ALICE_PASSWORD)
    with pytest.raises(DirectoryUnavailable):
        d.check()


def test_duplicate_and_bad_names_refused(users_file) -> None:  # type: ignore[no-untyped-def]
    d = FileDirectory(users_file, hasher=FAST_HASHER)
    with pytest.raises(ValueError):
        d.add_user("ALICE", "whatever long")
    with pytest.raises(ValueError):
        d.add_user("bad name", "whatever long")


def test_many_users_added_in_one_write(users_file) -> None:  # type: ignore[no-untyped-def]
    d = FileDirectory(users_file, hasher=FAST_HASHER)
    d.add_users([NewUser(f"U{i}", f"password number {i}", groups=("City-Staff",))
                 for i in range(3)])
    for i in range(3):
        identity = d.authenticate(username=f"u{i}", password=f"password number {i}")
        assert identity.groups == frozenset({"City-Staff"})
    assert "password number" not in users_file.read_text()


def test_a_bulk_add_is_all_or_nothing(users_file) -> None:  # type: ignore[no-untyped-def]
    d = FileDirectory(users_file, hasher=FAST_HASHER)
    before = users_file.read_text()
    with pytest.raises(ValueError):
        d.add_users([NewUser("dave", "whatever long"), NewUser("Alice", "whatever long")])
    with pytest.raises(ValueError):
        d.add_users([NewUser("erin", "whatever long"), NewUser("ERIN", "whatever long")])
    with pytest.raises(ValueError):
        d.add_users([NewUser("frank", "whatever long"), NewUser("bad name", "whatever long")])
    assert users_file.read_text() == before
    assert d.lookup("dave") is None and d.lookup("erin") is None
