"""Issue 17 item 13: ``make run`` on a bare Debian 12. Without python3-venv, ``python3 -m
venv`` leaves a half-made ``.venv`` (a python, no pip); it must not count as done, so the
rerun after ``apt-get install python3-venv`` works instead of failing on ``.venv/bin/pip``.

The real Makefile runs in a scratch copy with a stand-in ``python3`` that behaves like
Debian's: ``-m venv`` makes ``bin/python`` and then fails when ensurepip is "missing".
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

FAKE_PYTHON = """#!/bin/sh
# a stand-in for python3: `-m venv DIR`, `-m pip ...`, and nothing else
if [ "$1" = "-m" ] && [ "$2" = "venv" ]; then
  mkdir -p "$3/bin"
  if [ -e "$FAKE_NO_ENSUREPIP" ]; then
    printf '#!/bin/sh\\nexit 1\\n' > "$3/bin/python"; chmod +x "$3/bin/python"
    echo "ensurepip is not available" >&2
    exit 1
  fi
  cp "$0" "$3/bin/python"
  exit 0
fi
if [ "$1" = "-m" ] && [ "$2" = "pip" ]; then
  echo "pip $*" >> "$FAKE_LOG"
  exit 0
fi
exit 2
"""


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    if shutil.which("make") is None:
        pytest.fail("make is needed (apt-get install -y make)", pytrace=False)
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    (tmp_path / "setup.cfg").write_text("", encoding="utf-8")
    (tmp_path / "pyproject.toml").write_text("", encoding="utf-8")
    fake = tmp_path / "fake-python3"
    fake.write_text(FAKE_PYTHON, encoding="utf-8")
    fake.chmod(0o755)
    return tmp_path


def _make(scratch: Path, target: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FAKE_NO_ENSUREPIP": str(scratch / "no-ensurepip"),
           "FAKE_LOG": str(scratch / "pip.log")}
    return subprocess.run(["make", "-s", target, f"PYTHON={scratch / 'fake-python3'}"],
                          cwd=scratch, env=env, capture_output=True, text=True, timeout=60)


def test_a_failed_venv_is_removed_and_the_rerun_works(scratch: Path) -> None:
    (scratch / "no-ensurepip").touch()
    failed = _make(scratch, ".venv/.installed")
    assert failed.returncode != 0
    assert "apt-get install -y make python3-venv" in failed.stderr
    assert not (scratch / ".venv").exists()  # nothing half made to trip the next run

    (scratch / "no-ensurepip").unlink()  # the operator installed python3-venv
    done = _make(scratch, ".venv/.installed")
    assert done.returncode == 0, done.stderr
    assert (scratch / ".venv" / ".venv-ok").exists()
    assert "install -q -e .[test]" in (scratch / "pip.log").read_text(encoding="utf-8")


def test_a_working_venv_without_the_stamp_is_kept(scratch: Path) -> None:
    venv = scratch / ".venv" / "bin"
    venv.mkdir(parents=True)
    shutil.copy(scratch / "fake-python3", venv / "python")
    (venv / "marker").touch()
    done = _make(scratch, ".venv/.venv-ok")
    assert done.returncode == 0, done.stderr
    assert (venv / "marker").exists() and "keeping" in done.stdout
