"""The layering is enforced, not trusted: import-linter contracts live in setup.cfg."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_import_contracts_hold() -> None:
    result = subprocess.run([str(Path(sys.executable).with_name("lint-imports")),
                             str(ROOT / "setup.cfg")],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_pure_layers_load_without_flask_or_sqlalchemy() -> None:
    code = ("import sys, authgate.policy, authgate.factors, authgate.access.return_url, "
            "authgate.access.proxy_headers, authgate.core.values; "
            "bad = [m for m in ('flask', 'werkzeug', 'sqlalchemy') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_module_over_400_lines() -> None:
    long = [(p.relative_to(ROOT), n) for p in (ROOT / "authgate").rglob("*.py")
            if (n := len(p.read_text().splitlines())) > 400]
    assert long == []
