"""Issue 17 item 12: errors tied to their fields, the QR code as an image with a text
alternative, session "End" buttons that name the device (WCAG 2.1: 1.1.1, 3.3.1, 4.1.2).

The refused field carries ``aria-invalid="true"`` and ``aria-describedby`` naming the
message (a ``role=alert``); a field that was not refused carries no ``aria-invalid``. The
pages before the password step stay uniform: a wrong password and an unknown user give the
same markup (tests/web/test_login.py compares them whole).
"""
from __future__ import annotations

import re
from datetime import timedelta
from html.parser import HTMLParser

import pyotp

from authgate.core.values import Level, RequestMeta
from tests.conftest import ALICE_PASSWORD, pending_change, session_cookie
from tests.fixtures.net import csrf_token


class Fields(HTMLParser):
    """Every element with an id: its attributes (and whether a ``<details>`` is open)."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.by_id: dict[str, dict[str, str | None]] = {}
        self.details: list[dict[str, str | None]] = []
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "details":
            self.details.append(attributes)
        if attributes.get("id"):
            self.by_id[str(attributes["id"])] = {"tag": tag, **attributes}


def refused(page: str, field: str) -> str:
    """The id of the alert the refused ``field`` points at."""
    fields = Fields(page)
    attrs = fields.by_id[field]
    assert attrs.get("aria-invalid") == "true", attrs
    [message] = [i for i in str(attrs.get("aria-describedby") or "").split()
                 if fields.by_id.get(i, {}).get("role") == "alert"]
    return message


def not_refused(page: str, field: str) -> None:
    assert "aria-invalid" not in Fields(page).by_id[field], Fields(page).by_id[field]


def with_totp(services, clock) -> str:  # type: ignore[no-untyped-def]
    pending = services.mfa.totp.start(username="alice", name="phone", meta=RequestMeta())
    services.mfa.totp.confirm(username="alice", credential_id=pending.credential_id,
                              code=pyotp.TOTP(pending.secret).at(clock.now()),
                              meta=RequestMeta())
    services.mfa.recovery.regenerate(username="alice", meta=RequestMeta())
    clock.advance(seconds=60)
    return str(pending.secret)


def test_a_wrong_password_marks_the_password_field(client, auth) -> None:  # type: ignore[no-untyped-def]
    assert "aria-invalid" not in client.get("/login").get_data(as_text=True)  # nothing yet
    page = auth.login(password="wrong password").get_data(as_text=True)
    assert refused(page, "password") == "login-error"
    assert "login-error" in str(Fields(page).by_id["username"]["aria-describedby"])
    not_refused(page, "username")


def test_a_disabled_account_is_told_but_no_field_is_marked_wrong(auth) -> None:  # type: ignore[no-untyped-def]
    page = auth.login(username="carol", password="carol's long password").get_data(as_text=True)
    assert 'role="alert"' in page
    not_refused(page, "password")


def test_a_refused_code_on_the_factor_step_marks_its_own_field(client, services, clock,
                                                               auth) -> None:  # type: ignore[no-untyped-def]
    with_totp(services, clock)
    r = auth.login(rd="http://localhost:8080/mfa/x")
    page = client.get(r.headers["Location"]).get_data(as_text=True)
    not_refused(page, "code")
    assert not any("open" in d for d in Fields(page).details)
    token = csrf_token(page)
    wrong = client.post("/login/totp", data={"csrf_token": token, "code": "000000",
                                             "rd": "http://localhost:8080/mfa/x"})
    assert wrong.status_code == 401
    page = wrong.get_data(as_text=True)
    assert refused(page, "code") == "factor-error"
    not_refused(page, "recovery")
    wrong = client.post("/login/recovery", data={"csrf_token": token, "code": "nope-nope",
                                                 "rd": "http://localhost:8080/mfa/x"})
    page = wrong.get_data(as_text=True)
    assert refused(page, "recovery") == "factor-error"
    not_refused(page, "code")
    assert any("open" in d for d in Fields(page).details)  # the refused field is visible


def test_a_refused_enrolment_code_marks_the_code_field(client, services, auth) -> None:  # type: ignore[no-untyped-def]
    auth.login()
    page = client.get("/enrol").get_data(as_text=True)
    not_refused(page, "code")
    r = client.post("/enrol/code", data={"csrf_token": csrf_token(page),
                                         "code": "abcd-efgh-jkmn-pqrs"})
    assert refused(r.get_data(as_text=True), "code") == "enrol-error"


def test_the_qr_code_is_an_image_that_says_what_it_is(client, services) -> None:  # type: ignore[no-untyped-def]
    session_cookie(client, services, "alice", Level.PASSWORD)
    services.mfa.enrolment.issue(username="alice", issued_by="adam", ttl=timedelta(hours=1),
                                 meta=RequestMeta())
    page = client.get("/enrol").get_data(as_text=True)
    code = services.mfa.enrolment.issue(username="alice", issued_by="adam",
                                        ttl=timedelta(hours=1), meta=RequestMeta()).code
    page = client.post("/enrol/code", data={"csrf_token": csrf_token(page), "code": str(code)},
                       follow_redirects=True).get_data(as_text=True)
    r = client.post("/enrol/totp/start", data={"csrf_token": csrf_token(page), "name": "p"})
    page = r.get_data(as_text=True)
    match = re.search(r'<div class="qr" role="img" aria-label="([^"]+)">\s*<svg', page)
    assert match, page[:3000]
    assert "QR code" in match.group(1) and "key shown below as text" in match.group(1)
    assert 'id="totp-secret"' in page  # the key itself, as text


def test_each_end_button_names_the_session_it_ends(client, services) -> None:  # type: ignore[no-untyped-def]
    other = services.sessions.start(services.directory.lookup("alice"), level=Level.MFA,
                                    client_ip="10.1.2.3",
                                    user_agent="Mozilla/5.0 (Windows NT 10.0; Win64; x64) "
                                               "Gecko/20100101 Firefox/128.0")
    session_cookie(client, services, "alice", Level.MFA)
    page = client.get("/account").get_data(as_text=True)
    started = other.record.created_at.strftime("%Y-%m-%d %H:%M")
    labels = re.findall(r'aria-label="(End session on [^"]+)">End</button>', page)
    assert len(labels) == 1, labels
    assert "Firefox" in labels[0] and "Windows" in labels[0] and " started " in labels[0]
    assert labels[0] == f"End session on Firefox on Windows, started {started}"


def test_two_different_new_passwords_mark_the_confirmation(client, services) -> None:  # type: ignore[no-untyped-def]
    pending_change(client, services, "alice")
    page = client.get("/login").get_data(as_text=True)
    r = client.post("/password/change", data={
        "csrf_token": csrf_token(page), "username": "alice", "old_password": ALICE_PASSWORD,
        "new_password": "a new long password 1", "confirm_password": "another one 2"})
    page = r.get_data(as_text=True)
    assert r.status_code == 400
    assert refused(page, "confirm_password") == "change-error"
    assert Fields(page).by_id["new_password"]["aria-describedby"] == "pw-rules"
    not_refused(page, "new_password")


def test_the_admin_end_all_form_marks_the_field_it_refused(client, services) -> None:  # type: ignore[no-untyped-def]
    session_cookie(client, services, "adam", Level.PHISHING_RESISTANT)
    page = client.get("/admin/sessions/end-all").get_data(as_text=True)
    not_refused(page, "confirm-all")
    token = str(re.search(r'data-csrf="([^"]+)"', page).group(1))  # type: ignore[union-attr]
    r = client.post("/admin/sessions/end-all", data={"csrf_token": token,
                                                     "reason": "cookie leak", "confirm": "yes"})
    page = r.get_data(as_text=True)
    assert r.status_code == 400
    assert refused(page, "confirm-all") == "end-all-error"
    not_refused(page, "reason-all")
    r = client.post("/admin/sessions/end-all", data={"csrf_token": token, "reason": "",
                                                     "confirm": "END ALL SESSIONS"})
    page = r.get_data(as_text=True)
    assert refused(page, "reason-all") == "end-all-error"
    not_refused(page, "confirm-all")


def test_a_user_search_that_finds_nobody_is_tied_to_the_search_field(client, services) -> None:  # type: ignore[no-untyped-def]
    session_cookie(client, services, "adam", Level.PHISHING_RESISTANT)
    page = client.get("/admin/users?q=nobody-here").get_data(as_text=True)
    fields = Fields(page)
    assert "not-found" in fields.by_id["q"]["aria-describedby"].split()
    assert fields.by_id["not-found"]["role"] == "status"


def _change(client, services, old: str, new: str):  # type: ignore[no-untyped-def]
    pending_change(client, services, "alice")
    page = client.get("/login").get_data(as_text=True)
    return client.post("/password/change", data={
        "csrf_token": csrf_token(page), "username": "alice", "old_password": old,
        "new_password": new, "confirm_password": new})


def test_a_new_password_the_directory_refuses_marks_the_new_password(client, services) -> None:  # type: ignore[no-untyped-def]
    r = _change(client, services, ALICE_PASSWORD, ALICE_PASSWORD)  # must differ from the old
    page = r.get_data(as_text=True)
    assert r.status_code == 400 and "must differ" in page
    assert refused(page, "new_password") == "change-error"
    assert "pw-rules" in str(Fields(page).by_id["new_password"]["aria-describedby"])
    not_refused(page, "old_password")
    not_refused(page, "confirm_password")


def test_a_wrong_current_password_marks_the_current_password(client, services) -> None:  # type: ignore[no-untyped-def]
    r = _change(client, services, "not alice's password", "a new long password 1")
    page = r.get_data(as_text=True)
    assert r.status_code == 400
    assert refused(page, "old_password") == "change-error"
    not_refused(page, "new_password")
