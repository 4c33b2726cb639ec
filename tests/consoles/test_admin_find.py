"""Issue 17 item 8: the admin console finds people by prefix and name, hides actions with
nothing to act on, shows bans in words with a Lift per row, and keeps "end all sessions"
on a page of its own."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from authgate.admin.bans import describe_ban, local_time
from authgate.admin.people import find_people
from authgate.config.settings import LdapDirectorySettings
from authgate.core.values import Level
from authgate.directory.file import FileDirectory
from authgate.directory.ldap_search import MAX_TEXT, search_filter, search_users
from authgate.regulation import Ban
from tests.conftest import session_cookie
from tests.consoles.test_admin_console import csrf, events


@pytest.fixture
def admin(client, services):  # type: ignore[no-untyped-def]
    session_cookie(client, services, "adam", Level.PHISHING_RESISTANT)
    return client


def test_exact_name_opens_the_page_and_a_prefix_lists_people(admin) -> None:  # type: ignore[no-untyped-def]
    r = admin.get("/admin/users?q=Alice")
    assert r.status_code == 303 and r.headers["Location"] == "/admin/users/alice"
    page = admin.get("/admin/users?q=a").get_data(as_text=True)  # alice, adam, audrey
    for name in ("alice", "adam", "audrey"):
        assert f'href="/admin/users/{name}"' in page
    assert "Audrey Auditor" in page and "bob" not in page


def test_display_name_part_finds_the_person(admin) -> None:  # type: ignore[no-untyped-def]
    page = admin.get("/admin/users?q=liddell").get_data(as_text=True)
    assert 'href="/admin/users/alice"' in page and "Alice Liddell" in page


def test_no_match_says_what_to_try(admin) -> None:  # type: ignore[no-untyped-def]
    page = admin.get("/admin/users?q=zz%2A%29").get_data(as_text=True)
    assert "No account matches" in page and "zz*)" in page


def test_file_search_folds_case_and_caps_the_list(tmp_path) -> None:  # type: ignore[no-untyped-def]
    directory = FileDirectory(tmp_path / "users.yaml")
    for i in range(4):
        directory.add_user(f"tom{i}", "x" * 12, display_name=f"Tom Number{i}")
    directory.add_user("zoe", "x" * 12, display_name="Zoë Tomlinson")
    assert [m.username for m in directory.search_users("TOM", limit=10)] == \
        ["tom0", "tom1", "tom2", "tom3", "zoe"]
    found = find_people(directory=directory, search=directory, text="tom", limit=3)
    assert len(found.matches) == 3 and found.more and not found.exact
    assert find_people(directory=directory, search=directory, text="ZOE").exact == "zoe"
    assert find_people(directory=directory, search=None, text="tom1").exact == "tom1"


def test_ldap_filter_escapes_what_is_typed_and_refuses_control_characters() -> None:
    """RFC 4515 3: a typed ``*``, ``(``, ``)`` or ``\\`` is a character to look for; the real
    search against Samba is tests/ad/test_ad_search.py."""
    assert search_filter(" tom ") == ("(&(objectCategory=person)(objectClass=user)"
                                      "(|(sAMAccountName=tom*)(displayName=*tom*)))")
    assert "(sAMAccountName=\\2a\\29\\28cn=\\2a\\5c*)" in search_filter("*)(cn=*\\")
    assert len(search_filter("x" * 500)) == len(search_filter("x" * MAX_TEXT))
    asked: list[object] = []
    settings = LdapDirectorySettings(urls=("ldaps://dc.test",), base_dn="DC=city,DC=test")
    for text in ("", "   ", "a\x00", "al\nice", "a\x7f"):  # no name holds one: no search
        assert search_users(asked.append, settings, text, limit=5) == []
    assert asked == []


def test_reset_all_factors_is_hidden_without_factors(admin) -> None:  # type: ignore[no-untyped-def]
    page = admin.get("/admin/users/alice").get_data(as_text=True)
    assert "No devices" in page and "Reset all factors" not in page


NOW = datetime(2026, 12, 7, 2, 12, tzinfo=UTC)


def test_bans_read_as_sentences_in_the_policy_time_zone() -> None:
    ban = Ban("userip:tomas|10.1.2.3", "user_ip_banned", NOW + timedelta(minutes=15), 0)
    view = describe_ban(ban, tz="America/Toronto", now=NOW)
    assert view.sentence == ("tomas from 10.1.2.3, too many failed passwords, "
                             "until 21:27 Toronto time")  # today, in Toronto
    assert view.target == "tomas" and view.until_utc == "2026-12-07 02:27 UTC"
    assert describe_ban(Ban("ip:2001:db8::/64", "ip_banned", NOW, 1), tz=None,
                        now=NOW).target == "2001:db8::"
    assert describe_ban(Ban("pw:abc", "password_spray", NOW, 0), tz=None, now=NOW).target == ""
    assert local_time(NOW, tz="Nowhere/Else", now=NOW) == "02:12 UTC"
    assert local_time(NOW + timedelta(hours=3), tz="America/Toronto", now=NOW) == \
        "2026-12-07 00:12 Toronto time"  # tomorrow there: the date is said


def test_each_ban_row_has_its_own_lift(admin, services, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    until = services.clock.now() + timedelta(minutes=15)
    monkeypatch.setattr(services.regulator, "active_bans", lambda: [
        Ban("userip:bob|10.1.2.3", "user_ip_banned", until, 0),
        Ban("pw:secret-mac", "password_spray", until, 0)])
    page = admin.get("/admin/bans").get_data(as_text=True)
    assert "bob</strong>" not in page and "<strong>bob from 10.1.2.3</strong>" in page
    assert "too many failed passwords" in page and "Toronto time" in page
    assert page.count('name="target" value="bob"') == 1 and "secret-mac" not in page
    assert "ends on its own" in page
    r = admin.post("/admin/bans/lift", data={"csrf_token": csrf(page), "target": "bob",
                                             "reason": "called the desk, ID checked"})
    assert r.status_code == 303 and "done=bans_lifted" in r.headers["Location"]
    lift = events(services, "ban.lift")[-1]
    assert lift["username"] == "bob" and '"actor": "adam"' in lift["detail"]
    user_page = admin.get("/admin/users/bob").get_data(as_text=True)
    assert "bob from 10.1.2.3, too many failed passwords, until" in user_page


def test_lift_without_csrf_is_refused(admin, services) -> None:  # type: ignore[no-untyped-def]
    r = admin.post("/admin/bans/lift", data={"target": "bob", "reason": "no token here"})
    assert r.status_code == 400 and events(services, "ban.lift") == []


def test_end_all_sessions_lives_on_its_own_page(admin, services) -> None:  # type: ignore[no-untyped-def]
    home = admin.get("/admin").get_data(as_text=True)
    assert "END ALL SESSIONS" not in home and 'href="/admin/sessions/end-all"' in home
    page = admin.get("/admin/sessions/end-all").get_data(as_text=True)
    assert "Type END ALL SESSIONS to confirm" in page and "Cancel" in page
    r = admin.post("/admin/sessions/end-all", data={"csrf_token": csrf(page),
                                                    "reason": "cookie leak", "confirm": "no"})
    assert r.status_code == 400 and 'aria-invalid="true"' in r.get_data(as_text=True)
    assert events(services, "admin.all_sessions_ended") == []


def test_break_glass_search_lists_local_accounts_then_the_primarys(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The break-glass accounts and AD's answer in one list, a name only once."""
    from authgate.directory.break_glass import BreakGlassDirectory
    from authgate.directory.roles import roles_of

    primary = FileDirectory(tmp_path / "ad.yaml")
    primary.add_user("tomas", "x" * 12, display_name="Tomas Primary")
    primary.add_user("tomek", "x" * 12, display_name="Tomek Primary")
    local = FileDirectory(tmp_path / "break-glass.yaml")
    local.add_user("tom-emergency", "x" * 12, display_name="Break Glass")
    both = BreakGlassDirectory(primary=primary, local=local, primary_roles=roles_of(primary))
    assert roles_of(both).user_search is both
    assert [m.username for m in both.search_users("tom", limit=5)] == \
        ["tom-emergency", "tomas", "tomek"]
    assert len(both.search_users("tom", limit=1)) == 2  # limit + 1: "more" can be told
