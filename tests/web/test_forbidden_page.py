"""Issue 17 item 3: a refused request gets a page with a way forward, not a bare 403.

``/authgate/forbidden`` is what nginx's ``error_page 403`` (and the demo's proxy) shows;
the portal's own 403s use the same page. Through real nginx: tests/integration/test_nginx.py.
"""
from __future__ import annotations

from sqlalchemy import select
from werkzeug.test import Client

from authgate.core.values import Level
from authgate.demo.proxy import ForwardAuthProxy
from authgate.demo.sample_app import app as sample_app
from authgate.storage.tables import audit_events
from tests.conftest import session_cookie

PORTAL = "https://localhost:9091"  # tests/conftest.py public_url


def test_signed_in_user_sees_the_account_a_way_out_and_the_request_id(client, services) -> None:  # type: ignore[no-untyped-def]
    session_cookie(client, services, "alice", Level.MFA)
    r = client.get("/authgate/forbidden", headers={"X-Request-ID": "req-1234"},
                   environ_base={"REMOTE_ADDR": "127.0.0.1"})  # a trusted proxy
    page = r.get_data(as_text=True)
    assert r.status_code == 403 and "text/html" in r.content_type
    assert "Alice Liddell" in page and "alice" in page
    assert f'href="{PORTAL}/logout"' in page and "switch account" in page
    assert f'href="{PORTAL}/"' in page and "req-1234" in page
    assert f'href="{PORTAL}/static/style.css' in page  # the portal's assets, from any host
    assert PORTAL in r.headers["Content-Security-Policy"].split("style-src", 1)[1]


def test_anonymous_visitor_is_offered_sign_in_and_an_id_of_our_own(client) -> None:  # type: ignore[no-untyped-def]
    r = client.get("/authgate/forbidden", headers={"X-Request-ID": "spoofed-by-client"},
                   environ_base={"REMOTE_ADDR": "203.0.113.5"})
    page = r.get_data(as_text=True)
    assert r.status_code == 403 and f'href="{PORTAL}/login"' in page
    assert "spoofed-by-client" not in page and "Request id" in page


def test_console_refusal_uses_the_same_page(client, services) -> None:  # type: ignore[no-untyped-def]
    session_cookie(client, services, "alice", Level.PHISHING_RESISTANT)
    r = client.get("/admin")
    page = r.get_data(as_text=True)
    assert r.status_code == 403 and "Alice Liddell" in page and "Request id" in page


def test_demo_proxy_shows_the_page_with_the_audited_request_id(app, client, services) -> None:  # type: ignore[no-untyped-def]
    token = session_cookie(client, services, "alice", Level.MFA)
    proxy = Client(ForwardAuthProxy(app, sample_app, host="localhost:8080"), use_cookies=False)
    r = proxy.get("/forbidden/x", headers={"Cookie": f"__Host-authgate_session={token}"},
                  environ_base={"REMOTE_ADDR": "127.0.0.1", "REQUEST_URI": "/forbidden/x"})
    page = r.get_data(as_text=True)
    assert r.status_code == 403 and "Alice Liddell" in page
    rid = r.headers["X-Request-ID"]
    assert rid in page
    with services.engine.connect() as conn:
        [row] = conn.execute(select(audit_events).where(
            audit_events.c.request_id == rid)).mappings().all()
    assert row["event"] == "verify" and row["outcome"] == "deny"
    assert row["rule_id"] == "demo-forbidden"
