"""docs/requirements.md maps each requirement to tests: every test it names must exist."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_named_test_exists_and_every_requirement_has_one() -> None:
    doc = (ROOT / "docs" / "requirements.md").read_text()
    named = re.findall(r"(tests/[\w/]+\.py)(?:::(\w+))?", doc)
    assert len(named) > 40
    for path, name in named:
        text = (ROOT / path).read_text()
        assert not name or f"def {name}(" in text, f"{path}::{name} is not a test"
    rows = [line for line in doc.splitlines() if line.startswith("| ") and "---" not in line]
    for row in rows[1:]:
        assert "tests/" in row.split("|")[-2], f"requirement without a test: {row[:60]}"
