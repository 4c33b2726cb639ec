"""The audit console: auditors search, page and download; everyone else gets 403."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from authgate.audit.checkpoints import TrustedKeys
from authgate.audit.export_verify import verify_export
from authgate.composition.audit import build_audit_log, keyring_for
from authgate.composition.root import Services
from authgate.config import Settings
from authgate.core.values import Identity, Level
from tests.audit.conftest import event
from tests.conftest import make_settings

COOKIE = "__Host-authgate_session"


@pytest.fixture
def settings(tmp_path: Path, users_file: Path) -> Settings:
    return make_settings(tmp_path, users_file, server={"public_url": "https://auth.city.test"})


@pytest.fixture
def app(services: Services) -> Flask:
    from authgate.web import create_app
    from authgate.web.auditor import bp

    services.audit = build_audit_log(services.settings, services.engine, services.clock,
                                     close_on_exit=False)
    app = create_app({"services": services, "TESTING": True})
    if "auditor" not in app.blueprints:  # until create_app registers it
        app.register_blueprint(bp)
    return app


def sign_in(client: FlaskClient, services: Services, username: str, groups: set[str],
            level: Level = Level.MFA) -> None:
    issued = services.sessions.start(Identity(username=username, groups=frozenset(groups)),
                                     level=level, client_ip="127.0.0.1", user_agent="test")
    client.set_cookie(COOKIE, issued.token)


def test_anonymous_is_sent_to_login(client: FlaskClient) -> None:
    response = client.get("/audit/")
    assert response.status_code == 303 and "/login?rd=" in response.headers["Location"]


@pytest.mark.parametrize("groups", [{"City-Staff", "IT-Dept"}, {"authgate-admins"}])
def test_non_auditors_get_403(client: FlaskClient, services: Services,
                              groups: set[str]) -> None:
    sign_in(client, services, "alice", groups, Level.PHISHING_RESISTANT)
    assert client.get("/audit/").status_code == 403
    assert client.get("/audit/export.csv").status_code == 403
    refusals = list(services.audit.store.query(event="console.access"))
    assert refusals and refusals[-1].event.username == "alice"


def test_auditor_at_password_level_must_step_up(client: FlaskClient,
                                                services: Services) -> None:
    sign_in(client, services, "aud", {"authgate-auditors"}, Level.PASSWORD)
    assert client.get("/audit/").status_code == 303


def test_search_page_and_download(client: FlaskClient, services: Services,
                                  tmp_path: Path) -> None:
    for n in range(120):
        services.audit.record(event(n, username="bob" if n % 2 else "carol"))
    sign_in(client, services, "aud", {"authgate-auditors"})
    page = client.get("/audit/?user=bob")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert html.count("<tr><td class=\"mono\">") == 50 and ">carol<" not in html
    older = re.search(r'id="older" href="([^"]+)"', html)
    assert older
    second = client.get(older.group(1).replace("&amp;", "&")).get_data(as_text=True)
    assert second.count("<tr><td class=\"mono\">") == 10
    assert 'id="older"' not in second
    assert client.get("/audit/?outcome=bogus").status_code == 400

    download = client.get("/audit/export.csv?user=bob&since=2020-01-01")
    assert download.status_code == 200
    assert "attachment" in download.headers["Content-Disposition"]
    path = tmp_path / "dl.csv"
    path.write_bytes(download.get_data())
    keyring = keyring_for(services.settings)
    trusted = TrustedKeys.build(keyring=keyring, signer=services.audit.signer)
    assert verify_export(path, trusted=trusted, chain_keys=keyring.keys).count == 60
    exports = list(services.audit.store.query(event="audit.export"))
    assert exports[-1].event.username == "aud"
    assert ("filter_username", "bob") in exports[-1].event.detail
    assert client.get("/audit/export.jsonl").status_code == 200
    assert client.post("/audit/").status_code in (400, 405)
