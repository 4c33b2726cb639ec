"""``authgate bans list|lift``: operators see and end bans; both actions are audited."""
from __future__ import annotations

from pathlib import Path

import yaml
from click.testing import CliRunner
from sqlalchemy import select

from authgate.cli import Context
from authgate.cli.bans import bans_group
from authgate.composition.root import build_services
from authgate.config import load_settings
from authgate.regulation import AttemptOutcome
from authgate.regulation.timing import NoFloor
from authgate.storage.engine import migrate
from authgate.storage.tables import audit_events
from tests.conftest import TEST_ENCRYPTION_KEY, TEST_POLICIES, TEST_SECRET


def test_list_then_lift_a_user_and_an_ip(tmp_path: Path, users_file: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    config = tmp_path / "authgate.yaml"
    config.write_text(yaml.safe_dump({
        "server": {"public_url": "https://auth.city.test"},
        "storage": {"url": url},
        "directory": {"file": {"path": str(users_file)}},
        "policy": {"path": str(TEST_POLICIES), "require_approval": False},
        "secrets": {"session_key": TEST_SECRET, "audit_key": "c" * 40,
                    "encryption_keys": [TEST_ENCRYPTION_KEY]},
    }))
    migrate(url)
    services = build_services(load_settings(config))
    regulator = services.regulator
    regulator.floor = NoFloor()  # type: ignore[attr-defined]
    for n in range(2):  # the shipped max_failures_per_user
        admission = regulator.admit_password(username="bob", ip="198.51.100.4")
        assert admission.allowed
        regulator.record_password(admission=admission, outcome=AttemptOutcome.WRONG_PASSWORD,
                                  password=f"w{n}")
    assert not regulator.admit_password(username="bob", ip="198.51.100.5").allowed

    def run(*args: str) -> str:
        result = CliRunner().invoke(bans_group, list(args), obj=Context(str(config)))
        assert result.exit_code == 0, result.output
        return result.output
    listed = run("list")
    assert "user:bob" in listed and "user_banned" in listed
    assert "lifted: user:bob" in run("lift", "BOB", "--reason", "phoned the helpdesk")
    assert "no active ban on 198.51.100.4" in run("lift", "198.51.100.4", "--reason",
                                                  "checking the IP")
    assert run("list").strip() == "no active bans"
    assert regulator.admit_password(username="bob", ip="198.51.100.5").allowed
    with services.engine.connect() as conn:
        rows = conn.execute(select(audit_events.c.event, audit_events.c.detail).where(
            audit_events.c.event.in_(["ban.list", "ban.lift", "ban.user"]))).all()
    assert [r.event for r in rows] == ["ban.user", "ban.list", "ban.lift", "ban.lift",
                                       "ban.list"]
    assert "phoned the helpdesk" in rows[2].detail
    assert "cli:" in rows[1].detail  # the operator is the actor, not the username
    with services.engine.connect() as conn:
        listed_as = conn.execute(select(audit_events.c.username).where(
            audit_events.c.event == "ban.list")).scalars().all()
    assert all(not name.startswith("cli:") for name in listed_as)


def test_lift_needs_a_reason(tmp_path: Path) -> None:
    result = CliRunner().invoke(bans_group, ["lift", "bob"], obj=Context(None))
    assert result.exit_code != 0 and "--reason" in result.output


def test_lift_needs_the_consoles_reason_rule(tmp_path: Path) -> None:
    """One rule for the console and the CLI: at least five characters."""
    result = CliRunner().invoke(bans_group, ["lift", "bob", "--reason", "x"],
                                obj=Context(None))
    assert result.exit_code != 0 and "at least 5 characters" in result.output
