"""A password typed into the username field never reaches the audit trail (issue 16 item 5).

The attack: type a password as the user name on the real login form, on the password change
page, and often enough to be banned; then read every audit column of the real SQLite file.
A name the directory did not confirm is kept only as its pseudonym (``audit.names``), the
same one each time (a spray can still be counted); known names stay canonical; an auditor
finds the pseudonym with ``authgate audit user-hash NAME`` or the console.
"""
from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import yaml
from click.testing import CliRunner
from flask.testing import FlaskClient

from authgate.audit.names import NameMask, is_pseudonym
from authgate.cli import Context
from authgate.cli.audit import audit_group
from authgate.composition.root import Services
from authgate.config import Settings
from authgate.core.values import Identity, Level
from tests.conftest import (
    ALICE_PASSWORD,
    TEST_ENCRYPTION_KEY,
    TEST_POLICIES,
    TEST_SECRET,
    AuthActions,
)

SECRET_AS_NAME = "Winter2026!Sunshine"


def trail(settings: Settings) -> list[tuple[object, ...]]:
    """Every audit record as stored (all columns), read with sqlite3 as an insider would."""
    path = settings.storage.url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as db:
        return db.execute("SELECT * FROM audit_events ORDER BY id").fetchall()


def names_of(settings: Settings, event: str) -> list[str]:
    path = settings.storage.url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as db:
        return [r[0] for r in db.execute(
            "SELECT username FROM audit_events WHERE event LIKE ? ORDER BY id", (event,))]


def test_a_password_typed_as_the_name_is_never_stored(
        auth: AuthActions, client: FlaskClient, settings: Settings, services: Services) -> None:
    for n in range(4):  # the regulator bans the name after two failures
        auth.login(SECRET_AS_NAME, f"guess number {n}")
    client.post("/password/change", data={
        "csrf_token": auth.csrf(), "username": SECRET_AS_NAME, "old_password": "x",
        "new_password": "y", "confirm_password": "y"})
    rows = trail(settings)
    text = "\n".join(str(col) for row in rows for col in row).lower()
    assert SECRET_AS_NAME.lower() not in text and "sunshine" not in text
    expected = NameMask.for_keyring(services.audit.keyring).pseudonym(SECRET_AS_NAME.lower())
    assert re.fullmatch(r"wi\*\*\*\(16-31\)#[0-9a-f]{24}", expected)
    attempts = names_of(settings, "login.password")
    reasons = [r for (r,) in sqlite3.connect(settings.storage.url.removeprefix("sqlite:///"))
               .execute("SELECT reason FROM audit_events WHERE event = 'login.password'")]
    assert attempts == [expected] * 4 and "user_banned" in reasons
    assert names_of(settings, "ban.%") == [expected]
    assert names_of(settings, "password.change") == [expected]


def test_the_same_unknown_name_gives_the_same_pseudonym(auth: AuthActions, settings: Settings
                                                        ) -> None:
    """An auditor still counts a spray: one pseudonym per name, case and spaces aside."""
    for name in ("mallory.typo", "  Mallory.Typo ", "trent.typo", "ab"):
        auth.login(name, "Spring2026!")
    first, second, third, short = names_of(settings, "login.password")
    assert first == second != third and all(map(is_pseudonym, (first, third, short)))
    assert first.startswith("ma***(8-15)#") and short.startswith("***(1-3)#")


def test_known_names_stay_canonical(auth: AuthActions, settings: Settings) -> None:
    auth.login("alice", "wrong password")
    auth.login(" ALICE ", "wrong again")
    auth.login("carol", "carol's long password")  # disabled: refused, but the account exists
    auth.login("bob", "bob's long password")
    assert names_of(settings, "login.password") == ["alice", "alice", "carol", "bob"]


def test_the_auditor_finds_the_pseudonym_by_name(
        auth: AuthActions, client: FlaskClient, tmp_path: Path, settings: Settings,
        services: Services) -> None:
    auth.login("Mallory.Typo", "Spring2026!")
    auth.login("alice", ALICE_PASSWORD)
    (stored,) = [n for n in names_of(settings, "login.password") if n != "alice"]
    config = tmp_path / "cli.yaml"
    config.write_text(yaml.safe_dump({
        "server": {"public_url": "https://auth.city.test"},
        "storage": {"url": settings.storage.url},
        "directory": {"file": {"path": settings.directory.file.path}},
        "policy": {"path": str(TEST_POLICIES), "require_approval": False},
        "secrets": {"session_key": TEST_SECRET, "audit_key": TEST_SECRET,
                    "encryption_keys": [TEST_ENCRYPTION_KEY]}}))
    result = CliRunner().invoke(audit_group, ["user-hash", "mallory.typo"],
                                obj=Context(str(config)))
    assert result.exit_code == 0 and result.output.split()[0] == stored
    exported = CliRunner().invoke(audit_group, ["export", "--user", stored],
                                  obj=Context(str(config)))
    records = [line for line in exported.output.splitlines() if '"event":"login.pass' in line]
    assert exported.exit_code == 0 and len(records) == 1 and f'"username":"{stored}"' in records[0]
    issued = services.sessions.start(Identity(username="audrey", groups=frozenset(
        {"authgate-auditors"})), level=Level.MFA, client_ip="127.0.0.1", user_agent="test")
    client.set_cookie("__Host-authgate_session", issued.token)
    page = client.get("/audit/?user=Mallory.Typo").get_data(as_text=True)
    assert f">{stored}</a>" in page
    found = client.get(f"/audit/?user={stored.replace('#', '%23')}").get_data(as_text=True)
    assert found.count(f">{stored}</a>") >= 1 and "unknown_user" in found
