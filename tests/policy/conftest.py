"""Fixtures for the policy engine tests: plain pytest, no Flask."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from authgate.policy import PolicySet
from authgate.policy.files import load_policy_set
from tests.policy.helpers import GLOBALS, write


@pytest.fixture
def make_policies(tmp_path: Path) -> Callable[..., PolicySet]:
    """Build a PolicySet from rules YAML (appended to standard globals)."""

    def build(rules: str, globals_text: str = GLOBALS) -> PolicySet:
        directory = write(
            tmp_path / "policies",
            {
                "00-globals.yaml": globals_text,
                "10-rules.yaml": "version: 1\nrules:\n"
                + textwrap.indent(textwrap.dedent(rules), "  "),
            },
        )
        return load_policy_set(directory)

    return build
