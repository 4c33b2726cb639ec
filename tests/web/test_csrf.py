"""Every state-changing form needs its CSRF token (ASVS 4.2.2); only the proxy's and the
monitors' endpoints are exempt, and they change nothing."""
from __future__ import annotations

import re

import pytest

EXEMPT_BLUEPRINTS = {"verify", "health"}


def post_routes(app) -> list[str]:  # type: ignore[no-untyped-def]
    paths = []
    for rule in app.url_map.iter_rules():
        if "POST" in rule.methods and rule.endpoint.split(".")[0] not in EXEMPT_BLUEPRINTS:
            paths.append(re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"x\1", rule.rule))
    return sorted(paths)


def test_the_app_has_forms_to_protect(app) -> None:  # type: ignore[no-untyped-def]
    assert {"/login", "/logout"} <= set(post_routes(app))
    assert len(post_routes(app)) >= 10


def test_every_form_refuses_a_post_without_its_token(app, client, auth) -> None:  # type: ignore[no-untyped-def]
    auth.login()  # signed in: the refusal is the CSRF check's, not the login wall's
    for path in post_routes(app):
        r = client.post(path, data={"username": "alice", "password": "x", "code": "123456"})
        assert r.status_code == 400, (path, r.status_code)


@pytest.mark.parametrize("token", ["", "forged.token.value"])
def test_a_wrong_token_is_refused_too(client, token: str) -> None:  # type: ignore[no-untyped-def]
    r = client.post("/login", data={"csrf_token": token, "username": "alice", "password": "x"})
    assert r.status_code == 400
