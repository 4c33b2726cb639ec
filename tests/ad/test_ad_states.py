"""Issue 15 finding 5: a wrong password answers the same whatever the account's state.

Measured on Samba 4.17 (``test_what_samba_answers_for_each_state``): a wrong password gives
52e for an active, disabled (533 only with the right one), expired (701), password-expired
(532) or must-change (773) account, and counts a bad password; a locked account answers 775
to the right and to a wrong password alike, and counts nothing. So authgate answers 775 as a
wrong password (401, the generic page) unless the password matches the verifier of the last
password AD accepted (item 6); only then may the user read "contact the IT service desk".
The audit record keeps the precise reason (``account_locked``).
"""
from __future__ import annotations

import re

import pytest

from authgate.audit.names import NameMask
from authgate.core.errors import AuthgateError
from authgate.directory.ldap import LdapDirectory
from tests.ad.web_helpers import (
    CONTACT_IT,
    GENERIC_FAILURE,
    DcAdmin,
    WebUser,
    audit,
    strip_tokens,
)

pytestmark = pytest.mark.integration
STATES = ("carol", "dave", "erin", "frank", "grace")  # disabled, locked, must change, expired ×2
#: Headers whose value is per request (a new CSRF cookie, the date).
PER_REQUEST = {"Set-Cookie", "Date"}



@pytest.fixture
def dave_locked(ad, dc_admin: DcAdmin):  # type: ignore[no-untyped-def]
    """dave locked by real failed binds straight to the DC (authgate would refuse them)."""
    for i in range(int(ad.lockout_threshold)):
        assert dc_admin.user_bind("dave", f"Wrong-Pass-{i}!")["result"] == 49
    assert int(dc_admin.attribute("dave", "lockoutTime") or 0) > 0
    yield "dave"
    for user in STATES:  # lockoutTime 0 also clears badPwdCount: later tests start clean
        dc_admin.unlock(user)
    assert dc_admin.user_bind("dave", ad.password("dave"))["result"] == 0


def answer(response, typed: str = "") -> tuple[int, str, tuple[tuple[str, str], ...]]:  # type: ignore[no-untyped-def]
    """Status, page and headers, without what differs per request: tokens, nonces, and the
    username the person typed (kept in the form for every name alike, issue 17 item 6)."""
    skip = PER_REQUEST | ({"Content-Length"} if typed else set())  # the name's own length
    headers = tuple(sorted((k, re.sub(r"'nonce-[^']*'", "", v))
                           for k, v in response.headers.items() if k not in skip))
    page = strip_tokens(response.get_data(as_text=True))
    if typed:
        page = page.replace(f'value="{typed}"', 'value="TYPED"')
    return response.status_code, page, headers


def test_what_samba_answers_for_each_state(make_directory, ad, dave_locked: str,
                                           dc_admin: DcAdmin) -> None:
    """The facts the design rests on: wrong password → 52e except for a locked account."""
    d: LdapDirectory = make_directory()
    seen = {}
    for user in ("bob", *STATES):
        try:
            d.authenticate(username=user, password="Surely-Not-It-9!")
        except AuthgateError as exc:
            seen[user] = exc.reason
    assert seen == {"bob": "invalid_credentials", "carol": "invalid_credentials",
                    "dave": "account_locked", "erin": "invalid_credentials",
                    "frank": "invalid_credentials", "grace": "invalid_credentials"}
    dc_admin.unlock("bob")


def test_wrong_password_answers_alike_in_every_account_state(web, ad, dave_locked: str,
                                                             dc_admin: DcAdmin) -> None:
    """A 50-name spray (every seeded state, active users, unknown names), each name from its
    own address with its own password: one status, one page, one header set for all; the
    audit record still names the state."""
    app, services = web
    names = ["alice", "bob", *STATES, *(f"user{n:02d}" for n in range(1, 21))]
    names += [f"nobody{n:02d}" for n in range(50 - len(names))]
    answers = {}
    try:
        for n, name in enumerate(names):
            answers[name] = answer(WebUser(app, f"10.15.5.{n + 1}").login(name,
                                                                        f"Spray-{n}-x!"),
                                   name)
    finally:  # each active name took one bad password in AD: a right bind resets it
        for name in names:
            if name not in STATES and not name.startswith("nobody"):
                assert dc_admin.user_bind(name, ad.password(name))["result"] == 0
    reference = answers["alice"]
    assert reference[0] == 401 and GENERIC_FAILURE in reference[1]
    different = [name for name, a in answers.items() if a != reference]
    assert different == []
    reasons = {e.username: e.reason for e in audit(services, "login.password")}
    assert reasons["dave"] == "account_locked" and reasons["carol"] == "invalid_credentials"
    # a name AD does not know is kept as its pseudonym (audit/names.py)
    nobody = NameMask.for_keyring(services.audit.keyring).pseudonym("nobody00")
    assert reasons[nobody] == "unknown_user" and "nobody00" not in reasons


def test_locked_account_answers_even_its_right_password_as_wrong(web, ad, dc_admin: DcAdmin
                                                                ) -> None:
    """AD's 775 does not say whether the password was right, so authgate never tells
    "locked" to anyone, not even after the account signed in before (checking the item-6
    verifier here would cost an argon2id verification that a wrong password for an unlocked
    account does not pay: the time would tell the state). The audit record says it."""
    app, services = web
    try:
        assert WebUser(app, "10.15.6.1").login("dave", ad.password("dave")).status_code == 303
        for i in range(int(ad.lockout_threshold)):
            assert dc_admin.user_bind("dave", f"Wrong-Pass-{i}!")["result"] == 49
        wrong = WebUser(app, "10.15.6.2").login("dave", "Another-Wrong-1!")
        right = WebUser(app, "10.15.6.3").login("dave", ad.password("dave"))
        assert answer(wrong) == answer(right)
        assert right.status_code == 401 and GENERIC_FAILURE in right.get_data(True)
        assert CONTACT_IT not in right.get_data(True)
        reasons = [e.reason for e in audit(services, "login.password")]
        assert reasons == ["password_ok", "account_locked", "account_locked"]
    finally:
        dc_admin.unlock("dave")
        assert dc_admin.user_bind("dave", ad.password("dave"))["result"] == 0
