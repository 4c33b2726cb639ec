"""Every audit event the code writes is in the documented, versioned schema."""
from __future__ import annotations

import re
from pathlib import Path

from authgate.audit.catalog import EVENTS

ROOT = Path(__file__).resolve().parents[2]
_WRITTEN = re.compile(r'event="([a-z_.]+)"|self\._record\(\s*"([a-z_.]+)"|'
                      r'record\("([a-z_.]+)"|_record\("([a-z_.]+)"')


def documented(name: str) -> bool:
    return name in EVENTS or any(k.endswith(".*") and name.startswith(k[:-1]) for k in EVENTS)


def test_every_written_event_is_documented() -> None:
    written: set[str] = set()
    for path in (ROOT / "authgate").rglob("*.py"):
        for match in _WRITTEN.finditer(path.read_text()):
            written.update(g for g in match.groups() if g and "." in g or g == "verify"
                           or g == "logout")
    written.discard("")
    missing = sorted(name for name in written if name and not documented(name))
    assert missing == []
    doc = (ROOT / "docs" / "audit.md").read_text()
    assert all(f"`{name}`" in doc for name in EVENTS)


def test_doc_tables_are_the_catalogue_s_output() -> None:
    """docs/audit.md's event and reason tables are ``catalog.markdown()`` verbatim."""
    from authgate.audit.catalog import markdown

    doc = (ROOT / "docs" / "audit.md").read_text()
    assert markdown() in doc
    assert "| code | meaning |\n|---|---|\n" in doc
