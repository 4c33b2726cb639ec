"""The demo's audit trail is signed with Ed25519 like production (issue 16), so ``make run``
shows the real thing: checkpoints and export manifests an auditor verifies with the public
key alone (docs/audit.md "Verifying an export offline")."""
from __future__ import annotations

from pathlib import Path

import yaml

from authgate.audit.checkpoints import generate_key_file

#: beside the demo's other secrets (its configuration, its login)
KEY_FILE = "audit-signing.pem"


def ensure_signing_key(config: Path) -> Path:
    """Make the demo's Ed25519 signing key at first run (mode 0600, next to ``config``) and
    name it in ``config`` as ``audit.signing_key_file``; a configuration written by an
    older demo gains it too. Returns the key file."""
    key = (config.parent / KEY_FILE).resolve()
    if not key.exists():
        generate_key_file(key)
    text = config.read_text(encoding="utf-8")
    data = yaml.safe_load(text) or {}
    audit = data.setdefault("audit", {})
    if audit.get("signing_key_file") != str(key):
        audit["signing_key_file"] = str(key)
        header = "".join(line for line in text.splitlines(keepends=True)
                         if line.startswith("#"))
        config.write_text(header + yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return key
