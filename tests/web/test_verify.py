"""/verify: allow, challenge with the full login URL, deny; fail closed on every error."""
from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select

from authgate.storage.tables import audit_events
from tests.conftest import verify_headers


def audit_rows(services):  # type: ignore[no-untyped-def]
    with services.engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(audit_events).order_by(audit_events.c.id))
                .mappings()]


def test_anonymous_gets_401_with_complete_login_url(client, services) -> None:  # type: ignore[no-untyped-def]
    r = client.get("/verify", headers=verify_headers("/app/page?a=1&b=2", host="localhost:8080"))
    assert r.status_code == 401
    location = urlsplit(r.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == "https://localhost:9091/login"
    assert parse_qs(location.query)["rd"] == ["http://localhost:8080/app/page?a=1&b=2"]
    row = audit_rows(services)[-1]
    assert (row["event"], row["outcome"], row["rule_id"], row["path"]) == (
        "verify", "challenge", "demo-default", "/app/page")
    assert row["policy_digest"] == services.policies.current.digest


def test_login_then_allowed_with_identity_headers(client, auth, services) -> None:  # type: ignore[no-untyped-def]
    r = auth.login(rd="http://localhost:8080/app/page?a=1&b=2")
    assert r.status_code == 303
    r = client.get(r.headers["Location"])  # /login/next: the policy says nothing is missing
    assert r.status_code == 303 and r.headers["Location"] == "http://localhost:8080/app/page?a=1&b=2"
    r = client.get("/verify", headers=verify_headers("/app/page?a=1&b=2", host="localhost:8080"))
    assert r.status_code == 200
    assert r.headers["Remote-User"] == "alice"
    assert r.headers["Remote-Groups"] == "City-Staff,IT-Dept"
    assert r.headers["Remote-Name"] == "Alice Liddell"
    assert r.headers["Remote-Email"] == "alice@city.test"
    row = audit_rows(services)[-1]
    assert (row["outcome"], row["username"], row["rule_id"]) == ("allow", "alice", "demo-default")


def test_policy_deny_is_403_and_bypass_needs_no_session(client) -> None:  # type: ignore[no-untyped-def]
    assert client.get("/verify", headers=verify_headers("/forbidden/x")).status_code == 403
    r = client.get("/verify", headers=verify_headers("/public/x"))
    assert r.status_code == 200 and "Remote-User" not in r.headers


def test_unknown_host_is_denied_by_default(client, auth) -> None:  # type: ignore[no-untyped-def]
    auth.login()
    r = client.get("/verify", headers=verify_headers("/", host="unknown.example", proto="https"))
    assert r.status_code == 403


def test_logout_revokes_server_side(client, auth) -> None:  # type: ignore[no-untyped-def]
    auth.login()
    cookie = client.get_cookie("__Host-authgate_session")
    assert cookie is not None
    assert client.get("/verify", headers=verify_headers()).status_code == 200
    auth.logout()
    client.set_cookie("__Host-authgate_session", cookie.value, domain="localhost")
    assert client.get("/verify", headers=verify_headers()).status_code == 401


@pytest.mark.parametrize("cookie", ["", "x", "A" * 4000, "%00%ff", "é", "a;b", "\"quoted\""])
def test_forged_or_malformed_cookie_is_anonymous(client, cookie: str) -> None:  # type: ignore[no-untyped-def]
    r = client.get("/verify", headers={**verify_headers(),
                                       "Cookie": f"__Host-authgate_session={cookie}"})
    assert r.status_code == 401


@pytest.mark.parametrize("headers", [
    {},
    {"X-Original-URI": "/x", "X-Forwarded-Host": "localhost"},
    {"X-Original-URI": "//evil", "X-Forwarded-Proto": "http", "X-Forwarded-Host": "localhost"},
    {"X-Original-URI": "/x", "X-Forwarded-Proto": "http", "X-Forwarded-Host": "a\x01b"},
    {"X-Original-URI": "/x", "X-Forwarded-Proto": "http", "X-Forwarded-Host": "localhost",
     "X-Original-Method": "BREW"},
])
def test_missing_or_bad_forwarded_headers_refused_and_audited(  # type: ignore[no-untyped-def]
        client, auth, services, headers) -> None:
    auth.login()
    r = client.get("/verify", headers=headers)
    assert r.status_code == 403
    row = audit_rows(services)[-1]
    assert (row["event"], row["outcome"], row["reason"]) == ("verify", "error", "bad_request")


def test_untrusted_peer_forwarded_headers_ignored(client, auth) -> None:  # type: ignore[no-untyped-def]
    auth.login()
    r = client.get("/verify", headers=verify_headers(),
                   environ_base={"REMOTE_ADDR": "203.0.113.5"})
    assert r.status_code == 403


def test_audit_write_failure_fails_closed(client, auth, services) -> None:  # type: ignore[no-untyped-def]
    """The audit record is written before the answer; if it cannot be, the answer is no."""
    from sqlalchemy import text

    auth.login()
    assert client.get("/verify", headers=verify_headers()).status_code == 200
    with services.engine.begin() as conn:
        conn.execute(text("ALTER TABLE audit_events RENAME TO audit_events_gone"))
    r = client.get("/verify", headers=verify_headers())
    assert r.status_code == 403 and "Remote-User" not in r.headers


def test_session_lookup_failure_fails_closed(client, auth, services, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    auth.login()
    monkeypatch.setattr(services.sessions, "resolve",
                        lambda *_: (_ for _ in ()).throw(RuntimeError("boom")))
    r = client.get("/verify", headers=verify_headers())
    assert r.status_code == 403
    assert audit_rows(services)[-1]["reason"] == "internal_error"


def test_oversized_header_is_refused_not_500(client) -> None:  # type: ignore[no-untyped-def]
    r = client.get("/verify", headers=verify_headers("/" + "a" * 9000))
    assert r.status_code == 403


def test_traefik_and_caddy_get_a_redirect(client) -> None:  # type: ignore[no-untyped-def]
    """They pass the auth answer to the browser as is: a 302 with the login URL."""
    r = client.get("/verify", headers={"X-Forwarded-Proto": "https",
                                       "X-Forwarded-Host": "permits.city.test",
                                       "X-Forwarded-Uri": "/a?b=1&c=2",
                                       "X-Forwarded-Method": "GET"})
    assert r.status_code == 302
    assert "rd=https%3A%2F%2Fpermits.city.test%2Fa%3Fb%3D1%26c%3D2" in r.headers["Location"]


@pytest.mark.parametrize("uri", ["/public/..%2fforbidden/x", "/public/..;/forbidden/x"])
def test_encoded_traversal_cannot_borrow_a_bypass(client, uri: str) -> None:  # type: ignore[no-untyped-def]
    assert client.get("/verify", headers=verify_headers(uri)).status_code == 403


def test_policy_read_error_keeps_the_last_good_set_and_is_audited(  # type: ignore[no-untyped-def]
        client, auth, services, monkeypatch) -> None:
    """A reload that fails with an I/O error (issue 14 item 5) is a rejected reload: the
    last good set keeps judging, and the rejection is audited; never an unaudited error."""
    auth.login()
    assert client.get("/verify", headers=verify_headers()).status_code == 200
    good = services.policies.current.digest

    def unreadable(_directory):  # type: ignore[no-untyped-def]
        raise PermissionError("policy file unreadable")

    monkeypatch.setattr("authgate.policy.live.load_policy_set", unreadable)
    services.policies.request_reload()  # what SIGHUP asks for
    r = client.get("/verify", headers=verify_headers())
    assert r.status_code == 200 and services.policies.current.digest == good
    rows = audit_rows(services)
    assert (rows[-2]["event"], rows[-2]["outcome"], rows[-2]["reason"]) == (
        "policy.reload", "deny", "policy_rejected")
    row = rows[-1]
    assert (row["event"], row["outcome"]) == ("verify", "allow")
    assert row["policy_digest"] == services.policies.current.digest


# -- issue #14: the host and path judged are the ones the app serves -----------------------
def test_a_host_outside_protected_domains_is_refused_and_audited(client, auth, services  # type: ignore[no-untyped-def]
                                                                 ) -> None:
    """Defence in depth for finding 1: a proxy that forwards a client-chosen host is refused
    (fail closed), and the audit record names the host it was asked about."""
    auth.login()
    for host in ("evil.example", "localhost.evil.example", "city.test", "a.city.test.evil"):
        r = client.get("/verify", headers=verify_headers("/public/x", host=host, proto="https"))
        assert r.status_code == 403 and "Remote-User" not in r.headers, host
        row = audit_rows(services)[-1]
        assert (row["outcome"], row["reason"], row["host"]) == ("error", "unprotected_host", host)
    ok = client.get("/verify",
                    headers=verify_headers("/public/x", host="LocalHost.", proto="https"))
    assert ok.status_code == 200


def test_the_port_comes_from_x_forwarded_port(client) -> None:  # type: ignore[no-untyped-def]
    """nginx sends ``$host`` (no port) and ``$server_port``: the return URL keeps the port
    that accepted the request, never one the client wrote into ``Host``."""
    def rd(extra: dict[str, str], host: str = "localhost") -> str:
        headers = {**verify_headers("/a?b=1", host=host, proto="https"), **extra}
        r = client.get("/verify", headers=headers)
        assert r.status_code == 401, extra
        return parse_qs(urlsplit(r.headers["Location"]).query)["rd"][0]

    assert rd({"X-Forwarded-Port": "8443"}) == "https://localhost:8443/a?b=1"
    assert rd({"X-Forwarded-Port": "443"}) == "https://localhost/a?b=1"
    assert rd({"X-Forwarded-Port": "8443"}, host="localhost:9999") == "https://localhost:8443/a?b=1"
    assert rd({}, host="localhost:9999") == "https://localhost:9999/a?b=1"
    for bad in ("0", "65536", "x", "80,443", "", "８０"):
        r = client.get("/verify", headers={**verify_headers("/a", proto="https"),
                                           "X-Forwarded-Port": bad})
        assert r.status_code == 403, bad


@pytest.mark.parametrize("uri", ["/admin;x/", "/forbidden;x/y", "/public/%2e%2e;/forbidden/",
                                 "/forbidden%3bx/", "/public//forbidden", "/public/./x",
                                 "/public/..%c0%afforbidden", "/public\\..\\forbidden"])
def test_path_parameters_and_dot_segments_are_refused_and_audited(client, services,  # type: ignore[no-untyped-def]
                                                                   uri: str) -> None:
    r = client.get("/verify", headers=verify_headers(uri))
    assert r.status_code == 403 and "Remote-User" not in r.headers
    row = audit_rows(services)[-1]
    assert (row["outcome"], row["reason"], row["path"]) == ("deny", "ambiguous_path", uri)


def test_an_undecidable_request_keeps_what_the_proxy_sent(client, auth, services) -> None:  # type: ignore[no-untyped-def]
    """Second outside attack: a refused ``PROPFIND /admin/x`` was audited with no host and
    no path; the record now keeps what the proxy said, cut and neutralised."""
    import json

    auth.login()
    r = client.get("/verify", headers={"X-Original-URI": "/admin/whoami.json",
                                       "X-Forwarded-Proto": "https",
                                       "X-Forwarded-Host": "localhost",
                                       "X-Original-Method": "PROPFIND"})
    assert r.status_code == 403
    row = audit_rows(services)[-1]
    assert (row["reason"], row["path"]) == ("bad_request", "")
    detail = json.loads(row["detail"])
    assert detail == {"sent_host": "localhost", "sent_method": "PROPFIND",
                      "sent_uri": "/admin/whoami.json"}


def test_verify_is_answered_in_front_of_flask_with_the_same_answers(  # type: ignore[no-untyped-def]
        client, auth, app, services) -> None:
    """Issue 20 item 3: ``/verify`` is a WSGI handler beside Flask, not a Flask view. Flask
    has no route for it (one implementation), HEAD answers like GET without a body, any
    other method is 405, and no portal cookie or page header leaks onto the proxy's answer."""
    assert "/verify" not in {rule.rule for rule in app.url_map.iter_rules()}
    auth.login()
    got = client.get("/verify", headers=verify_headers())
    head = client.head("/verify", headers=verify_headers())
    assert (got.status_code, head.status_code) == (200, 200)
    assert got.data == b"OK\n" and head.data == b""
    assert head.headers["Content-Length"] == got.headers["Content-Length"] == "3"
    assert head.headers["Remote-User"] == got.headers["Remote-User"] == "alice"
    assert got.headers["Content-Type"] == "text/plain; charset=utf-8"
    for name in ("Set-Cookie", "Content-Security-Policy", "Vary"):
        assert name not in got.headers
    for method in ("POST", "PUT", "DELETE", "OPTIONS"):
        r = client.open("/verify", method=method,
                        headers={**verify_headers(), "X-Request-ID": f"method-{method}"})
        assert r.status_code == 405 and r.headers["Allow"] == "GET, HEAD", method
        # audited like every other refusal (outside test of issue 20: it was not)
        row = audit_rows(services)[-1]
        assert (row["event"], row["outcome"], row["reason"], row["request_id"]) == (
            "request.refused", "deny", "http_405", f"method-{method}")
        assert f'"method": "{method}"' in row["detail"]


def test_each_verify_is_timed_once(client) -> None:  # type: ignore[no-untyped-def]
    from authgate.core.metrics import VERIFY_SECONDS

    def count() -> float:
        return next(s.value for m in VERIFY_SECONDS.collect() for s in m.samples
                    if s.name.endswith("_count"))

    before = count()
    client.get("/verify", headers=verify_headers())
    client.get("/verify", headers=verify_headers("/forbidden/x"))
    assert count() == before + 2
