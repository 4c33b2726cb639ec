"""Issue 14 item 5: a control character in ``User-Agent`` or ``Cookie`` is refused by
/verify with a 403 and an audit record naming the reason (never a 500, never unaudited), and
the record shows the characters escaped rather than carrying them on."""
from __future__ import annotations

import pytest

from authgate.core.values import Level
from tests.conftest import verify_headers
from tests.web.test_verify import audit_rows


@pytest.mark.parametrize("header,value", [
    ("User-Agent", "Mozilla/5.0\x01"),
    ("User-Agent", "a\x1bb[31m"),
    ("User-Agent", "del\x7f"),
    ("User-Agent", "nul\x00"),
    ("Cookie", "__Host-authgate_session=abc\x01def"),
    ("Cookie", "other=\x1f; __Host-authgate_session=abc"),
])
def test_control_character_is_refused_and_audited(app, services, header: str,
                                                  value: str) -> None:  # type: ignore[no-untyped-def]
    client = app.test_client(use_cookies=False)  # the Cookie header exactly as sent
    r = client.get("/verify", headers={**verify_headers("/public/x"), header: value})
    assert r.status_code == 403
    row = audit_rows(services)[-1]
    assert (row["event"], row["outcome"], row["reason"]) == (
        "verify", "error", "control_character_in_header")
    assert (row["host"], row["path"]) == ("localhost", "/public/x")
    assert not any(ord(c) < 32 or ord(c) == 127 for c in row["user_agent"])


def test_a_signed_in_user_with_a_control_character_is_not_allowed(app, services) -> None:  # type: ignore[no-untyped-def]
    client = app.test_client(use_cookies=False)
    token = services.sessions.start(services.directory.lookup("alice"), level=Level.MFA,
                                    client_ip="127.0.0.1", user_agent="test").token
    assert client.get("/verify", headers={**verify_headers(), "Cookie":
                      f"__Host-authgate_session={token}"}).status_code == 200
    r = client.get("/verify", headers={**verify_headers(), "User-Agent": "x\x02",
                                       "Cookie": f"__Host-authgate_session={token}"})
    assert r.status_code == 403 and "Remote-User" not in r.headers


def test_the_proxy_can_report_a_header_it_could_not_pass_on(client, services) -> None:  # type: ignore[no-untyped-def]
    """nginx cannot hand gunicorn a control character (gunicorn answers 400, nginx turns
    that into an unaudited 500); it sends a clean header and says so instead."""
    r = client.get("/verify", headers={**verify_headers("/public/x"),
                                       "X-Authgate-Header-Problem": "user-agent"})
    assert r.status_code == 403
    assert audit_rows(services)[-1]["reason"] == "control_character_in_header"


def test_tab_is_a_legal_field_character(client) -> None:  # type: ignore[no-untyped-def]
    r = client.get("/verify", headers={**verify_headers("/public/x"), "User-Agent": "a\tb"})
    assert r.status_code == 200
