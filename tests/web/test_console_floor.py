"""The consoles keep their floors whatever the policy says (attack found on #14's stack): with
a policy set that lets the portal host in at ``password``, an admin's stolen password alone
opened the admin console, issued an enrolment code and became phishing-resistant access."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from authgate.access.console_floor import console_floor
from authgate.access.next_step import Step, next_step
from authgate.composition.root import build_services
from authgate.core.values import Level, Resource
from authgate.storage.engine import migrate
from authgate.web import create_app
from tests.conftest import TEST_POLICIES, make_settings, session_cookie

LENIENT = """version: 1
rules:
  - {id: portal-everything, description: a policy that forgot the consoles,
     domains: [localhost], level: password}
"""


@pytest.fixture
def lenient_client(tmp_path: Path, users_file: Path, clock):  # type: ignore[no-untyped-def]
    policies = tmp_path / "policies"
    policies.mkdir()
    shutil.copy(TEST_POLICIES / "00-globals.yaml", policies / "00-globals.yaml")
    (policies / "10-lenient.yaml").write_text(LENIENT)
    settings = make_settings(tmp_path, users_file,
                             policy={"path": str(policies), "require_approval": False})
    migrate(settings.storage.url)
    services = build_services(settings, clock=clock)
    client = create_app({"services": services, "TESTING": True}).test_client()
    return client, services


@pytest.mark.parametrize(("user", "path", "too_weak", "enough"), [
    ("adam", "/admin", (Level.PASSWORD, Level.MFA), Level.PHISHING_RESISTANT),
    ("adam", "/admin/users/alice", (Level.PASSWORD, Level.MFA), Level.PHISHING_RESISTANT),
    ("audrey", "/audit/", (Level.PASSWORD,), Level.MFA),
])
def test_a_lenient_policy_cannot_lower_a_console_floor(lenient_client, user: str, path: str,  # type: ignore[no-untyped-def]
                                                        too_weak: tuple[Level, ...],
                                                        enough: Level) -> None:
    client, services = lenient_client
    for level in too_weak:
        client.delete_cookie("__Host-authgate_session", domain="localhost")
        session_cookie(client, services, user, level)
        r = client.get(path)
        assert r.status_code == 303 and r.headers["Location"].startswith("/login?rd="), level
    client.delete_cookie("__Host-authgate_session", domain="localhost")
    session_cookie(client, services, user, enough)
    assert client.get(path).status_code == 200


def test_the_login_flow_asks_for_the_floor(lenient_client) -> None:  # type: ignore[no-untyped-def]
    client, services = lenient_client
    session_cookie(client, services, "adam", Level.MFA)
    r = client.get("/login/next?rd=https%3A%2F%2Flocalhost%3A9091%2Fadmin%2F")
    # not sent on to the console: adam has no key yet, so he is sent to enrol one
    assert r.status_code == 303 and r.headers["Location"].startswith("/enrol?rd=")
    policy_set = services.policies.current
    session = services.sessions.resolve(client.get_cookie("__Host-authgate_session").value)
    admin = Resource(scheme="https", host="localhost", port=9091, path="/admin/", query="",
                     method="GET")
    assert next_step(policy_set, session=session, target=admin, ip=None,
                     now=services.clock.now()) is Step.DONE  # the lenient policy alone
    assert next_step(policy_set, session=session, target=admin, ip=None,
                     now=services.clock.now(),
                     floor=Level.PHISHING_RESISTANT) is Step.PHISHING_RESISTANT


@pytest.mark.parametrize(("host", "path", "floor"), [
    ("auth.city.test", "/admin", Level.PHISHING_RESISTANT),
    ("auth.city.test", "/admin/x", Level.PHISHING_RESISTANT),
    ("auth.city.test", "/audit/search", Level.MFA),
    ("auth.city.test", "/administrator", None),
    ("auth.city.test", "/account", None),
    ("hr.city.test", "/admin/", None),
])
def test_console_floor_table(host: str, path: str, floor: Level | None) -> None:
    target = Resource(scheme="https", host=host, port=None, path=path, query="", method="GET")
    assert console_floor(target, portal_host="auth.city.test") is floor


def test_a_console_challenge_is_audited(lenient_client) -> None:  # type: ignore[no-untyped-def]
    """Second outside attack: the consoles' redirects to sign in were not in the trail."""
    from sqlalchemy import select

    from authgate.storage.tables import audit_events

    client, services = lenient_client
    client.get("/admin")
    session_cookie(client, services, "adam", Level.PASSWORD)
    client.get("/admin/users")
    with services.engine.connect() as conn:
        rows = conn.execute(select(audit_events).where(
            audit_events.c.event == "console.access")).all()
    assert [(r.outcome, r.reason, r.username, r.path) for r in rows] == [
        ("challenge", "login_required", "", "/admin"),
        ("challenge", "step_up", "adam", "/admin/users")]
