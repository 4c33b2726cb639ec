"""Audit values are neutralised at construction (ASVS 7.3.1: log injection)."""
from __future__ import annotations

from authgate.core.values import AuditEvent, Outcome, neutralise


def test_control_characters_and_line_separators_are_escaped() -> None:
    assert neutralise("alice\r\nFAKE login ok\x1b[31m\u2028") == \
        "alice\\x0d\\x0aFAKE login ok\\x1b[31m\\u2028"


def test_c1_controls_read_from_a_latin_1_header_are_escaped_too() -> None:
    """Outside test of issue 20: a User-Agent read as latin-1 kept 0x80-0x9f raw, among them
    0x9b, the 8-bit CSI a terminal takes for an escape sequence. Printable latin-1 stays."""
    from authgate.web.context import printable

    raw = "A\x9b31mRED\x9b0m \x80\x9f\x85 caf\xe9"
    assert neutralise(raw) == "A\\x9b31mRED\\x9b0m \\x80\\x9f\\x85 caf\xe9"
    assert printable(raw) == neutralise(raw)
    assert AuditEvent(event="verify", outcome=Outcome.ALLOW, user_agent=raw).user_agent == \
        neutralise(raw)


def test_event_fields_are_neutralised_and_capped() -> None:
    e = AuditEvent(event="login.password", outcome=Outcome.FAILURE, username="bob\nroot",
                   user_agent="UA\x00" + "x" * 600, path="/a\rb",
                   detail=(("k\n", "v\r"),))
    assert e.username == "bob\\x0aroot" and e.path == "/a\\x0db"
    assert len(e.user_agent) == 512 and "\x00" not in e.user_agent
    assert e.detail == (("k\\x0a", "v\\x0d"),)
