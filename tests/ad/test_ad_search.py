"""The admin console's search against a real Samba AD DC (issue 17 item 8): a login-name
prefix or a display-name part, through the service account, escaped (RFC 4515 3) and
size-limited (RFC 4511 4.5.1)."""
from __future__ import annotations

from collections.abc import Callable

import pytest

from authgate.directory.ldap import LdapDirectory
from tests.ad.samba import DcFacts

pytestmark = pytest.mark.integration


def names(directory: LdapDirectory, text: str, limit: int = 25) -> list[str]:
    return [m.username for m in directory.search_users(text, limit=limit)]


def test_prefix_and_display_name_part_find_people(directory: LdapDirectory) -> None:
    assert names(directory, "al") == ["alice"]
    assert names(directory, "ALI") == ["alice"]          # AD matches case-insensitively
    # "Example" is in Alice's and Bob's display names, in no login name
    assert names(directory, "example") == ["alice", "bob"]
    [carol] = directory.search_users("Disabled", limit=5)
    assert carol.username == "carol" and carol.disabled and carol.display_name == "Carol Disabled"
    [alice] = directory.search_users("alice", limit=5)
    assert (alice.display_name, alice.email, alice.disabled) == (
        "Alice Example", "alice@city.test", False)


def test_service_accounts_outside_the_user_base_are_not_found(
        make_directory: Callable[..., LdapDirectory], ad: DcFacts, directory: LdapDirectory
) -> None:
    assert names(directory, "svc") == ["svc-authgate"]  # the whole domain: it is a user
    people = make_directory(user_base_dn=ad.user_base_dn)
    assert names(people, "svc") == [] and names(people, "al") == ["alice"]


def test_typed_metacharacters_are_characters_not_wildcards(directory: LdapDirectory) -> None:
    # pat's display name is "Pat (Ops)* O, Brien": a literal "*" or "(Ops)*" finds pat alone;
    # unescaped, "*" would match everyone and "(Ops)*" would be a broken filter.
    assert names(directory, "*") == ["pat"]
    assert names(directory, "(Ops)*") == ["pat"]
    for attack in ("*)(objectClass=*", "alice)(|(cn=*", ")(", "\\61lice", "\\"):
        assert names(directory, attack) == [], attack
    # Samba ends a value at an escaped NUL ("a\\00*" is "a*"): control characters never
    # reach the filter
    for attack in ("a\x00", "\x00", "al\nice", "a\x7f"):
        assert names(directory, attack) == [], repr(attack)


def test_the_size_limit_keeps_one_search_small(directory: LdapDirectory) -> None:
    # 20 seeded userNN accounts; the console asks for limit + 1 to say "more"
    found = names(directory, "user", limit=5)
    assert len(found) == 6 and all(n.startswith("user") for n in found)
    assert len(names(directory, "user", limit=50)) == 20
    assert names(directory, "   ") == []
