"""The policy engine is pure: importing it pulls in no Flask, Werkzeug or SQLAlchemy."""

from __future__ import annotations

import json
import subprocess
import sys


def test_policy_imports_no_web_or_storage() -> None:
    code = (
        "import json, sys, authgate.policy, authgate.policy.files.cases;"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('flask', 'werkzeug', 'sqlalchemy', 'alembic', 'ldap3') or m.startswith(("
        "'authgate.web', 'authgate.storage', 'authgate.composition', "
        "'authgate.sessions',"
        " 'authgate.directory')))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout
    assert json.loads(out) == []
