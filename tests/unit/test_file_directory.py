"""The file directory: argon2id, disabled accounts, live reload, atomic writes."""
from __future__ import annotations

import pytest

from authgate.core.errors import AccountDisabled, AuthenticationFailed, DirectoryUnavailable
from authgate.directory.file import FileDirectory
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
