"""The admin console's policy page in real Chromium through nginx (issue 19 item 4): a
change written to the served policy directory but not approved is shown as pending, with
its diff per file and its preview and readiness summaries; the page passes the axe check.

Its own stack (nginx, authgate, the sample app): the shared one serves the repository's
test policies without ``require_approval``, where a change would be enforced at once.
"""
from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.browser.conftest import (
    ADMIN,
    STAFF,
    Stack,
    _http_template,
    _require_binaries,
    _write_users,
)
from tests.browser.consoles_helpers import chromium, enrol_first_key
from tests.browser.test_pages_a11y import audit_page
from tests.conftest import TEST_POLICIES
from tests.integration.harness import (
    free_port,
    make_prefix,
    start_authgate,
    start_gunicorn,
    start_nginx,
    stop,
    write_authgate_config,
)

PENDING = """\
version: 1
rules:
  - id: app-needs-key
    description: The sample app will need a security key.
    domains: [localhost]
    paths: ['^/whoami']
    level: phishing_resistant
"""


@pytest.fixture(scope="module")
def approved_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A stack serving an approved copy of the test policies with ``require_approval``."""
    _require_binaries()
    from authgate.composition.root import build_services
    from authgate.config import load_settings
    from authgate.policy.files import approve
    from authgate.storage.engine import migrate

    run_dir = tmp_path_factory.mktemp("policy-stack")
    policies = run_dir / "policies"
    shutil.copytree(TEST_POLICIES, policies)
    approve(policies, reviewer="rita", note="baseline", now=datetime.now(UTC))
    app_port, portal_port, gateway_port, upstream_port, verify_port = (
        free_port() for _ in range(5))
    config = write_authgate_config(
        run_dir, public_url=f"http://localhost:{portal_port}", mode="demo",
        webauthn={"rp_id": "localhost", "origins": [f"http://localhost:{portal_port}"]},
        policy={"path": str(policies), "require_approval": True})
    _write_users(run_dir / "users.yaml")
    db = run_dir / "authgate.db"
    migrate(f"sqlite:///{db}")
    prefix = make_prefix()
    stack = Stack(run_dir, config, db, app_port, portal_port, gateway_port, upstream_port)
    try:
        stack.procs.append(start_authgate({"AUTHGATE_CONFIG": str(config)},
                                          portal_port=gateway_port, verify_port=verify_port,
                                          run_dir=run_dir))
        stack.procs.append(start_gunicorn(
            "authgate.demo.sample_app:app", upstream_port, {}, workers=1, run_dir=run_dir,
            name="upstream", ready_path="/ready/whoami.json",
            ready=lambda r: r.status_code == 200 and r.json().get("app") == "sample"))
        stack.procs.append(start_nginx(_http_template(prefix), {
            "LISTEN_V4": "127.0.0.1", "LISTEN_V6": "[::1]",
            "APP_HOST": "localhost", "APP_PORT": app_port,
            "PORTAL_HOST": "localhost", "PORTAL_PORT": portal_port,
            "GATEWAY_PORT": gateway_port, "VERIFY_PORT": verify_port,
            "UPSTREAM_PORT": upstream_port, "TLS_CERT": "unused", "TLS_KEY": "unused",
        }, prefix, ready_url=f"http://localhost:{portal_port}/healthz", ca_file=config))
        stack.services = build_services(load_settings(config))
        yield stack
    finally:
        for proc in reversed(stack.procs):
            stop(proc)
        shutil.rmtree(prefix, ignore_errors=True)


def test_the_policy_page_shows_a_pending_change_with_its_effect(approved_stack: Stack) -> None:
    stack = approved_stack
    from authgate.core.values import Level
    from authgate.web.cookies import cookie_name_for

    with chromium(stack) as admin:
        enrol_first_key(admin, stack, ADMIN, f"{stack.portal}/admin")
        admin.wait_url(f"{stack.portal}/admin")
        # History: the admin (a key) and a staff member with a password only use the app.
        staff = stack.services.sessions.start(stack.services.directory.lookup(STAFF[0]),
                                              level=Level.PASSWORD, client_ip="127.0.0.1",
                                              user_agent="browser-test")
        name = cookie_name_for(stack.services.settings.session)
        for cookies in (admin.cookies(), {name: staff.token}):
            assert stack.through_nginx("/whoami.json", cookies).status_code == 200
        # The change, written but not approved: shown, not enforced.
        policies = Path(stack.run_dir / "policies")
        (policies / "85-pending.yaml").write_text(PENDING, encoding="utf-8")
        admin.open(f"{stack.portal}/admin/policy")
        admin.wait_text("Pending change (not approved)")
        text = admin.text()
        assert "85-pending.yaml: added (+7 −0 lines)" in text
        assert "+  - id: app-needs-key" in text
        assert "2 decisions replayed" in text and "1 would change" in text
        readiness = admin.find("#pending table:last-of-type").text
        assert "app-needs-key" in readiness and STAFF[0] in readiness
        assert ADMIN not in readiness  # holds a key
        audit_page(admin, stack, {})  # labels, CSP and the axe check
        admin.screenshot("19-admin-policy-pending")
        assert stack.through_nginx("/whoami.json", {name: staff.token}).status_code == 200
