"""The ``Directory`` contract (style conv. 3): one set of expectations for every backend.

Runs on ``file`` and ``break_glass`` (the composite with a file primary and the break-glass
file beside it). ``ldap`` is not a param: ldap3's MOCK_SYNC strategy cannot evaluate the
LDAP_MATCHING_RULE_IN_CHAIN group search ``LdapDirectory`` sends (``LDAPAttributeError:
invalid attribute ExtensibleMatch``), so mocking it would test a fake. The same
expectations are proven for AD against a real Samba DC in ``tests/ad`` (integration).
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from authgate.core.errors import AccountDisabled, AuthenticationFailed, DirectoryUnavailable
from authgate.directory import Directory, roles_of
from authgate.directory.break_glass import BreakGlassDirectory
from authgate.directory.file import FileDirectory
from authgate.directory.ldap_states import AccountState
from tests.conftest import FAST_HASHER

PASSWORD = "a long enough password"
#: where the test adds its "active" and "disabled" users for one backend
Users = dict[str, FileDirectory]


def _file(tmp: Path) -> tuple[Directory, Users]:
    users = FileDirectory(tmp / "users.yaml", hasher=FAST_HASHER)
    return FileDirectory(tmp / "users.yaml", hasher=FAST_HASHER), {"active": users,
                                                                   "disabled": users}


def _break_glass(tmp: Path) -> tuple[Directory, Users]:
    primary = FileDirectory(tmp / "users.yaml", hasher=FAST_HASHER)
    local = FileDirectory(tmp / "break-glass.yaml", hasher=FAST_HASHER)
    directory = BreakGlassDirectory(primary=primary, local=local,
                                    primary_roles=roles_of(primary))
    # the active user lives in the primary, the disabled one among the break-glass names
    return directory, {"active": FileDirectory(tmp / "users.yaml", hasher=FAST_HASHER),
                       "disabled": FileDirectory(tmp / "break-glass.yaml", hasher=FAST_HASHER)}


BACKENDS: dict[str, Callable[[Path], tuple[Directory, Users]]] = {
    "file": _file, "break_glass": _break_glass}


#: The optional roles each backend plays (directory.roles); a role a backend gains or loses
#: must be a decision, so it fails here. The file backend keeps no account states.
ROLES = {"file": {"password_changer"}, "break_glass": {"account_status", "password_changer"}}


def _made(backend: str, tmp_path: Path) -> Directory:
    made, users = BACKENDS[backend](tmp_path)
    users["active"].add_user("alice", PASSWORD, display_name="Alice", groups=["Staff"])
    users["disabled"].add_user("carol", PASSWORD, groups=["Staff"])
    users["disabled"].set_disabled("carol", True)
    return made


@pytest.fixture(params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def directory(backend: str, tmp_path: Path) -> Directory:
    return _made(backend, tmp_path)


def _playing(role: str) -> list[str]:
    return sorted(name for name, roles in ROLES.items() if role in roles)


def test_each_backend_plays_its_documented_roles(backend: str, directory: Directory) -> None:
    roles = roles_of(directory)
    played = {name for name, source in (("account_status", roles.account_status),
                                        ("password_changer", roles.password_changer))
              if source is not None}
    assert played == ROLES[backend]


def test_the_right_password_gives_the_identity(directory: Directory) -> None:
    identity = directory.authenticate(username=" ALICE ", password=PASSWORD)
    assert identity.username == "alice" and identity.groups == frozenset({"Staff"})
    assert identity.display_name == "Alice" and identity.source


def test_wrong_password_and_unknown_user_fail_alike(directory: Directory) -> None:
    """One exception type either way (ASVS 2.2.1); only ``reason`` tells them apart."""
    for name, password in (("alice", "wrong"), ("nobody", PASSWORD), ("alice", "")):
        with pytest.raises(AuthenticationFailed) as info:
            directory.authenticate(username=name, password=password)
        assert type(info.value) is AuthenticationFailed


def test_a_disabled_account_is_named_only_with_its_password(directory: Directory) -> None:
    with pytest.raises(AccountDisabled):
        directory.authenticate(username="carol", password=PASSWORD)
    with pytest.raises(AuthenticationFailed) as wrong:
        directory.authenticate(username="carol", password="wrong")
    assert type(wrong.value) is AuthenticationFailed


def test_lookup_finds_only_usable_accounts(directory: Directory) -> None:
    found = directory.lookup("Alice")
    assert found is not None and found.username == "alice" and "Staff" in found.groups
    assert directory.lookup("carol") is None
    assert directory.lookup("nobody") is None


def test_check_passes_while_the_directory_can_serve(directory: Directory) -> None:
    directory.check()


@pytest.mark.parametrize("backend", _playing("account_status"))
def test_account_status_agrees_with_lookup(backend: str, tmp_path: Path) -> None:
    directory = _made(backend, tmp_path)
    source = roles_of(directory).account_status
    assert source is not None
    status = source.account_status("alice")
    assert status is not None and status.state is AccountState.ACTIVE
    assert status.identity == directory.lookup("alice")
    assert source.account_status("nobody") is None


@pytest.mark.parametrize("backend", _playing("password_changer"))
def test_password_change_needs_the_old_password(backend: str, tmp_path: Path) -> None:
    directory = _made(backend, tmp_path)
    changer = roles_of(directory).password_changer
    assert changer is not None
    with pytest.raises(AuthenticationFailed):
        changer.change_password(username="alice", old_password="wrong",
                                new_password="another long password")
    changer.change_password(username="alice", old_password=PASSWORD,
                            new_password="another long password")
    assert directory.authenticate(username="alice", password="another long password")
    with pytest.raises(AuthenticationFailed):
        directory.authenticate(username="alice", password=PASSWORD)


def test_an_unreadable_store_is_unavailable_not_a_failed_login(tmp_path: Path) -> None:
    """Fail closed and say why: a broken users file is an outage, never "wrong password"."""
    (tmp_path / "users.yaml").write_text("users: [not, a, mapping]\n")
    for made, _ in (_file(tmp_path), _break_glass(tmp_path)):
        with pytest.raises(DirectoryUnavailable):
            made.check()
