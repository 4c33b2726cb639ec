"""The DC stopped in the middle of a run, through the real pages: fail closed, break-glass
still usable, and service back without rebuilding the app when the DC returns.

Named ``zz`` so that it runs after every other AD module; each test starts the DC again
(and waits until it answers) before it ends, whatever happens.
"""
from __future__ import annotations

import pytest

from authgate.audit.names import NameMask
from tests.ad.web_helpers import (
    BREAK_GLASS_PASSWORD,
    BREAK_GLASS_USER,
    GENERIC_FAILURE,
    UNAVAILABLE,
    WebUser,
    ad_app,
    audit,
    break_glass_file,
    dc_stopped,
)

pytestmark = pytest.mark.integration


def test_dc_outage_fails_closed_and_recovers_without_restart(tmp_path, ad, clock) -> None:  # type: ignore[no-untyped-def]
    app, services = ad_app(tmp_path, ad, clock, break_glass=break_glass_file(tmp_path))
    probe = app.test_client()
    alice = WebUser(app, "10.30.0.1")
    try:
        assert alice.login("alice", ad.password("alice")).status_code == 303
        assert alice.verify().status_code == 200
        assert probe.get("/readyz").status_code == 200

        with dc_stopped(ad):
            # a new login: the clear "unavailable" page, never the generic failure
            bob = WebUser(app, "10.30.0.2")
            r = bob.login("bob", ad.password("bob"))
            page = r.get_data(as_text=True)
            assert r.status_code == 503 and UNAVAILABLE in page and GENERIC_FAILURE not in page
            assert not bob.has_session_cookie()
            # AD could not confirm the name: the trail keeps its pseudonym (audit/names.py)
            bob_hidden = NameMask.for_keyring(services.audit.keyring).pseudonym("bob")
            [failed] = [e for e in audit(services, "login.password")
                        if e.username == bob_hidden]
            assert (failed.outcome, failed.reason) == ("error", "directory_unavailable")

            ready = probe.get("/readyz")
            assert ready.status_code == 503
            body = ready.get_json()
            assert body["ready"] is False and body["checks"]["directory"] != "ok"
            assert body["checks"]["storage"] == "ok"

            # an existing session keeps working until its refresh is due ...
            clock.advance(minutes=4)
            assert alice.verify().status_code == 200

            # break-glass: the password step works without AD (and still opens nothing alone)
            glass = WebUser(app, "10.30.0.3")
            r = glass.login(BREAK_GLASS_USER, BREAK_GLASS_PASSWORD)
            assert r.status_code == 303 and glass.has_session_cookie()
            assert glass.verify().status_code == 401
            nxt = glass.client.get(r.headers["Location"])
            assert nxt.status_code == 303 and nxt.headers["Location"].startswith("/enrol")
            [used] = audit(services, "login.break_glass")
            assert used.username == BREAK_GLASS_USER and used.detail["severity"] == "high"

            # ... and is refused once it is due (not ended: it may resume)
            clock.advance(minutes=2)
            assert alice.verify().status_code == 401
            refresh = [(e.username, e.outcome, e.reason) for e in audit(services,
                                                                       "session.refresh")]
            assert ("alice", "error", "directory_unavailable") in refresh
            assert audit(services, "session.revoked") == []

        # the DC is back: same app, same objects, no restart
        assert probe.get("/readyz").status_code == 200
        again = WebUser(app, "10.30.0.4")
        r = again.login("bob", ad.password("bob"))
        assert r.status_code == 303
        v = again.verify()
        assert v.status_code == 200 and v.headers["Remote-User"] == "bob"
        assert alice.verify().status_code == 200  # re-read from AD, session resumes
        ok = [e.reason for e in audit(services, "login.password")
              if e.username in ("bob", bob_hidden)]
        assert ok == ["directory_unavailable", "password_ok"]
    finally:
        services.directory.primary.close()


def test_authgate_started_during_an_outage_says_unavailable(tmp_path, ad, clock) -> None:  # type: ignore[no-untyped-def]
    """Started while AD is down, authgate never read AD's lockout policy: the login must
    still get the 503 page (not the generic 401 of a refused attempt), and work once the DC
    is back, without a restart."""
    with dc_stopped(ad):
        app, services = ad_app(tmp_path, ad, clock)
        try:
            assert app.test_client().get("/readyz").status_code == 503
            r = WebUser(app, "10.30.1.1").login("bob", ad.password("bob"))
            reasons = [e.reason for e in audit(services, "login.password")]
            assert r.status_code == 503, (r.status_code, reasons)
            assert UNAVAILABLE in r.get_data(as_text=True)
        except BaseException:
            services.directory.close()
            raise
    clock.advance(seconds=31)  # the regulator re-reads AD's lockout policy 30 s after a failure
    try:
        r = WebUser(app, "10.30.1.2").login("bob", ad.password("bob"))
        assert r.status_code == 303, [e.reason for e in audit(services, "login.password")]
    finally:
        services.directory.close()


def test_retries_during_an_outage_do_not_block_the_user_afterwards(tmp_path, ad, clock) -> None:  # type: ignore[no-untyped-def]
    app, services = ad_app(tmp_path, ad, clock)
    try:
        assert WebUser(app, "10.30.2.1").login("bob", ad.password("bob")).status_code == 303
        with dc_stopped(ad):
            for _ in range(2):  # the user presses "sign in" again
                r = WebUser(app, "10.30.2.1").login("bob", ad.password("bob"))
                if r.status_code != 503:
                    raise RuntimeError(f"precondition: 503 during the outage, not {r.status_code}")
        r = WebUser(app, "10.30.2.1").login("bob", ad.password("bob"))
        assert r.status_code == 303, [e.reason for e in audit(services, "login.password")]
    finally:
        services.directory.close()
