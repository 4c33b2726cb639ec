"""Break-glass accounts beside the main directory: WebAuthn or nothing, always audited high."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from authgate.composition.root import build_services
from authgate.directory.file import FileDirectory
from authgate.storage.engine import migrate
from authgate.storage.tables import audit_events
from tests.conftest import FAST_HASHER, make_settings, verify_headers

PASSWORD = "break glass only in an emergency"


@pytest.fixture
def bg_client(tmp_path, users_file, clock):  # type: ignore[no-untyped-def]
    from authgate.web import create_app

    local = tmp_path / "break-glass.yaml"
    FileDirectory(local, hasher=FAST_HASHER).add_user("breakglass-1", PASSWORD,
                                                      groups=["authgate-admins"])
    settings = make_settings(tmp_path, users_file,
                             directory={"break_glass_file": str(local)})
    migrate(settings.storage.url)
    services = build_services(settings, clock=clock)
    app = create_app({"services": services, "TESTING": True})
    return app.test_client(), services


def test_break_glass_password_alone_opens_nothing(bg_client) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import AuthActions

    client, services = bg_client
    auth = AuthActions(client)
    r = auth.login(username="breakglass-1", password=PASSWORD,
                   rd="http://localhost:8080/anything")
    assert r.status_code == 303
    assert client.get("/verify", headers=verify_headers("/anything")).status_code == 401
    page = client.get(r.headers["Location"])
    assert page.status_code == 303 and page.headers["Location"].startswith("/enrol")
    with services.engine.connect() as conn:
        rows = conn.execute(select(audit_events).where(
            audit_events.c.event == "login.break_glass")).mappings().all()
    assert len(rows) == 1 and '"severity": "high"' in rows[0]["detail"]


def test_break_glass_names_never_reach_the_main_directory(bg_client) -> None:  # type: ignore[no-untyped-def]
    client, services = bg_client
    identity = services.directory.authenticate(username="breakglass-1", password=PASSWORD)
    assert identity.source == "break_glass"
    assert services.directory.lookup("alice").source == "file"  # everyone else: main one


def test_break_glass_totp_is_never_enough(bg_client, clock) -> None:  # type: ignore[no-untyped-def]
    """Even with an authenticator app enrolled, a break-glass session needs WebAuthn."""
    import pyotp

    from authgate.core.values import RequestMeta
    from tests.conftest import AuthActions

    client, services = bg_client
    pending = services.mfa.totp.start(username="breakglass-1", name="app", meta=RequestMeta())
    services.mfa.totp.confirm(username="breakglass-1", credential_id=pending.credential_id,
                              code=pyotp.TOTP(pending.secret).at(clock.now()),
                              meta=RequestMeta())
    clock.advance(seconds=60)
    auth = AuthActions(client)
    r = auth.login(username="breakglass-1", password=PASSWORD, rd="http://localhost:8080/x")
    page = client.get(r.headers["Location"]).get_data(as_text=True)
    assert "needs your security key" in page
    import re
    token = re.search(r'data-csrf="([^"]+)"', page).group(1)
    r = client.post("/login/totp", data={"csrf_token": token, "rd": "http://localhost:8080/x",
                                         "code": pyotp.TOTP(pending.secret).at(clock.now())})
    assert r.status_code == 401
    assert client.get("/verify", headers=verify_headers("/x")).status_code == 401
