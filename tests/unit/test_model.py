"""Audit values are neutralised at construction (ASVS 7.3.1: log injection)."""
from __future__ import annotations

from authgate.core.values import AuditEvent, Outcome, neutralise


def test_control_characters_and_line_separators_are_escaped() -> None:
    assert neutralise("alice\r\nFAKE login ok\x1b[31m\u2028") == \
        "alice\\x0d\\x0aFAKE login ok\\x1b[31m\\u2028"


def test_event_fields_are_neutralised_and_capped() -> None:
    e = AuditEvent(event="login.password", outcome=Outcome.FAILURE, username="bob\nroot",
                   user_agent="UA\x00" + "x" * 600, path="/a\rb",
                   detail=(("k\n", "v\r"),))
    assert e.username == "bob\\x0aroot" and e.path == "/a\\x0db"
    assert len(e.user_agent) == 512 and "\x00" not in e.user_agent
    assert e.detail == (("k\\x0a", "v\\x0d"),)
