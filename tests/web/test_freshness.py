"""Session freshness: directory changes reach live sessions within the refresh interval."""
from __future__ import annotations

from sqlalchemy import select

from authgate.directory.file import FileDirectory
from authgate.storage.tables import audit_events
from tests.conftest import ALICE_PASSWORD, FAST_HASHER, pending_change, verify_headers


def events(services, name: str) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    with services.engine.connect() as conn:
        return [(r.outcome, r.reason) for r in conn.execute(
            select(audit_events).where(audit_events.c.event == name))]


def test_disabled_account_loses_session_within_interval(client, auth, clock, services,
                                                        users_file) -> None:  # type: ignore[no-untyped-def]
    auth.login()
    FileDirectory(users_file, hasher=FAST_HASHER).set_disabled("alice", True)
    clock.advance(minutes=4)
    assert client.get("/verify", headers=verify_headers()).status_code == 200  # not due yet
    clock.advance(minutes=2)
    assert client.get("/verify", headers=verify_headers()).status_code == 401
    assert ("deny", "account_unavailable") in events(services, "session.revoked")
    assert services.sessions.store.list_for_user("alice") == []


def test_group_change_reaches_the_identity_headers(client, auth, clock, services,
                                                   users_file) -> None:  # type: ignore[no-untyped-def]
    auth.login()
    FileDirectory(users_file, hasher=FAST_HASHER).set_groups("alice", ["City-Staff"])
    clock.advance(minutes=6)
    r = client.get("/verify", headers=verify_headers())
    assert r.status_code == 200 and r.headers["Remote-Groups"] == "City-Staff"
    assert ("info", "groups_changed") in events(services, "session.refresh")


def test_directory_down_refuses_due_sessions_then_recovers(client, auth, clock, services,
                                                           users_file) -> None:  # type: ignore[no-untyped-def]
    auth.login()
    good = users_file.read_text()
    users_file.write_text("users: [broken")
    clock.advance(minutes=1)
    assert client.get("/verify", headers=verify_headers()).status_code == 200  # until due
    clock.advance(minutes=5)
    assert client.get("/verify", headers=verify_headers()).status_code == 401
    assert ("error", "directory_unavailable") in events(services, "session.refresh")
    users_file.write_text(good)
    assert client.get("/verify", headers=verify_headers()).status_code == 200  # no restart


def test_expired_password_can_be_changed_then_used(client, auth, services) -> None:  # type: ignore[no-untyped-def]
    from authgate.login.password import LoginAttempt

    result = services.login.change_password(
        LoginAttempt("alice", ALICE_PASSWORD, "127.0.0.1", "UA", "r1"), "short")
    assert not result.changed and "12 characters" in result.message
    result = services.login.change_password(
        LoginAttempt("alice", "wrong old password", "127.0.0.1", "UA", "r2"),
        "a brand new long password")
    assert not result.changed and result.message == "The username or password is incorrect."
    pending_change(client, services, "alice")
    token = auth.csrf()
    r = client.post("/password/change", data={
        "csrf_token": token, "username": "alice", "old_password": ALICE_PASSWORD,
        "new_password": "a brand new long password",
        "confirm_password": "a brand new long password"})
    assert r.status_code == 200 and "Your password was changed" in r.get_data(as_text=True)
    assert auth.login(password="a brand new long password").status_code == 303
    reasons = [reason for _, reason in events(services, "password.change")]
    assert reasons == ["password_change_rejected", "invalid_credentials", "password_changed"]
