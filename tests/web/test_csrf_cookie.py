"""Issue 14 item 5: the CSRF cookie carries the ``__Host-`` prefix (Secure, Path=/, no
Domain), with or without a shared session-cookie domain, and the demo on http://localhost
still works (browsers accept Secure and ``__Host-`` cookies from http://localhost)."""
from __future__ import annotations

from authgate.composition.root import build_services
from authgate.storage.engine import migrate
from tests.conftest import ALICE_PASSWORD, make_settings
from tests.fixtures.net import csrf_token


def _csrf_set_cookie(client) -> str:  # type: ignore[no-untyped-def]
    r = client.get("/login")
    [cookie] = [c for c in r.headers.getlist("Set-Cookie") if c.startswith("__Host-csrf-")]
    return cookie


def _assert_host_prefixed(cookie: str) -> None:
    name, _, rest = cookie.partition("=")
    attrs = [a.strip().lower() for a in rest.split(";")[1:]]
    assert name == "__Host-csrf-authgate_session"
    assert "secure" in attrs and "path=/" in attrs and "httponly" in attrs
    assert not any(a.startswith("domain=") for a in attrs)


def test_csrf_cookie_is_host_prefixed(client) -> None:  # type: ignore[no-untyped-def]
    _assert_host_prefixed(_csrf_set_cookie(client))


def test_csrf_cookie_is_host_prefixed_with_a_shared_session_domain(
        tmp_path, users_file, clock) -> None:  # type: ignore[no-untyped-def]
    from authgate.web import create_app

    settings = make_settings(tmp_path, users_file, session={"cookie_domain": "city.test"})
    migrate(settings.storage.url)
    app = create_app({"services": build_services(settings, clock=clock), "TESTING": True})
    _assert_host_prefixed(_csrf_set_cookie(app.test_client()))


def test_demo_login_over_http_localhost_works_with_the_prefixed_cookie(client) -> None:  # type: ignore[no-untyped-def]
    """The test client sends Secure cookies over http://localhost, as Chromium does."""
    page = client.get("http://localhost:9091/login").get_data(as_text=True)
    assert client.get_cookie("__Host-csrf-authgate_session") is not None
    r = client.post("http://localhost:9091/login", data={
        "csrf_token": csrf_token(page), "username": "alice", "password": ALICE_PASSWORD,
        "rd": ""})
    assert r.status_code == 303
    assert client.get_cookie("__Host-authgate_session") is not None
