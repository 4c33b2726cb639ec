"""An auditor checks an export with the signer's public key alone (issue 16 item 3).

A real trail (SQLite file, sealed by ``build_audit_log``, an Ed25519 signing key), exported
through the CLI with two workers, then verified in a subprocess with a clean environment:
no ``AUTHGATE_CONFIG``, an empty ``HOME``, another working directory, only the public key.
Every insider edit gives exit 1 naming the kind of damage and the line; the intact file 0.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from authgate.audit.checkpoints import generate_key_file
from authgate.cli import Context
from authgate.cli.audit import audit_group
from authgate.composition.audit import build_audit_log
from authgate.config import load_settings
from authgate.core.clock import SystemClock
from authgate.storage.engine import make_engine, migrate
from tests.audit.conftest import event
from tests.conftest import TEST_ENCRYPTION_KEY, TEST_POLICIES, TEST_SECRET

REPO = Path(__file__).resolve().parents[2]
TOOL = REPO / "tools" / "verify-export.py"


def make_config(root: Path, *, signing_key: bool = True) -> Path:
    """A real trail: 30 records (one user named like a formula) under a checkpoint."""
    root.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{root / 'trail.db'}"
    audit = {"signing_key_file": str(root / "signing.pem")} if signing_key else {}
    if signing_key:
        generate_key_file(root / "signing.pem")
    (root / "users.yaml").write_text("users: {}\n")
    path = root / "authgate.yaml"
    path.write_text(yaml.safe_dump({
        "server": {"public_url": "https://auth.city.test"}, "storage": {"url": url},
        "directory": {"file": {"path": str(root / "users.yaml")}},
        "policy": {"path": str(TEST_POLICIES), "require_approval": False}, "audit": audit,
        "secrets": {"session_key": TEST_SECRET, "audit_key": "c" * 40,
                    "encryption_keys": [TEST_ENCRYPTION_KEY]}}))
    migrate(url)
    engine = make_engine(url)
    log = build_audit_log(load_settings(path), engine, SystemClock(), close_on_exit=False)
    for n in range(30):
        log.record(event(n, username="=evil" if n == 3 else f"user{n % 3}"))
    log.checkpoint()
    log.close()
    engine.dispose()
    return path


def cli(config: Path, *args: str) -> str:
    result = CliRunner().invoke(audit_group, list(args), obj=Context(str(config)))
    assert result.exit_code == 0, result.output
    return result.output


def export(config: Path, target: Path, fmt: str, *more: str) -> Path:
    cli(config, "export", "--format", fmt, "--jobs", "2", "-o", str(target), *more)
    return target


@pytest.fixture(scope="module")
def trail(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The configuration and the public key an auditor was given."""
    root = tmp_path_factory.mktemp("trail")
    config = make_config(root)
    public = root / "auditor.pem"
    public.write_text(cli(config, "public-key").split("\n", 1)[1])
    return config, public


def clean_run(tmp_path: Path, *args: str, authgate: bool = False) -> tuple[int, str, str]:
    """A subprocess with nothing but PATH (and, for the authgate command, where its package
    is): no configuration, no secret, an empty HOME, another working directory."""
    home = tmp_path / "empty-home"
    home.mkdir(exist_ok=True)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home)}
    if authgate:
        env["PYTHONPATH"] = str(REPO)
        cmd = [sys.executable, "-c", "from authgate.cli import main; main()", "audit",
               "verify", *args]
    else:
        cmd = [sys.executable, str(TOOL), *args]
    done = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=60, check=False)
    return done.returncode, done.stdout, done.stderr


def lines_of(path: Path) -> list[str]:
    return path.read_bytes().decode().splitlines(keepends=True)  # CRLF kept


def first_record(fmt: str) -> int:
    return 2 if fmt == "csv" else 1


def change_field(lines: list[str], fmt: str) -> int:
    n = first_record(fmt) + 2
    lines[n - 1] = lines[n - 1].replace("wiki.city.test", "wiki.city.tesx", 1)
    return n


def remove_line(lines: list[str], fmt: str) -> int:
    n = first_record(fmt) + 3
    del lines[n - 1]
    return n


def add_line(lines: list[str], fmt: str) -> int:
    n = first_record(fmt) + 4
    lines.insert(n - 1, lines[n - 2].replace("/p/", "/q/"))
    return n


def swap_lines(lines: list[str], fmt: str) -> int:
    n = first_record(fmt) + 5
    lines[n - 1], lines[n] = lines[n], lines[n - 1]
    return n


def change_manifest(lines: list[str], fmt: str) -> int:
    lines[-1] = lines[-1].replace("user0", "user9").replace('"count":', '"count":1')
    lines[-1] = lines[-1].replace('""count"":', '""count"":1')
    return len(lines)


def cut_file(lines: list[str], fmt: str) -> int:
    text = "".join(lines)
    lines[:] = [text[: len(text) // 2]]
    return len(lines_of_text(lines[0]))


def lines_of_text(text: str) -> list[str]:
    return text.splitlines(keepends=True)


EDITS: dict[str, tuple[Callable[[list[str], str], int], str]] = {
    "changed field": (change_field, "altered"),
    "removed line": (remove_line, "removed"),
    "added line": (add_line, "added"),
    "swapped lines": (swap_lines, "reordered"),
    "changed manifest": (change_manifest, "manifest_invalid"),
    "truncated file": (cut_file, "truncated"),
}


def verdict(tmp_path: Path, path: Path, public: Path) -> tuple[int, dict[str, object]]:
    code, out, err = clean_run(tmp_path, "--json", "--public-key", str(public), str(path))
    return code, json.loads(out)


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_an_intact_export_verifies_with_the_public_key_alone(
        trail: tuple[Path, Path], tmp_path: Path, fmt: str) -> None:
    config, public = trail
    path = export(config, tmp_path / f"x.{fmt}", fmt)
    code, out, err = clean_run(tmp_path, "--export", str(path), "--public-key", str(public),
                               authgate=True)
    records = len(lines_of(path)) - first_record(fmt)  # every line but header and manifest
    assert code == 0, err
    assert f"export intact: {records} records" in out and "public key only" in out
    code, report = verdict(tmp_path, path, public)
    assert code == 0 and report["verdict"] == "intact" and report["records"] == records
    assert report["damage"] is None and report["checkpoint_signature"] == "checked"


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
@pytest.mark.parametrize("name", list(EDITS))
def test_every_edit_is_damage_at_its_line(trail: tuple[Path, Path], tmp_path: Path,
                                          fmt: str, name: str) -> None:
    config, public = trail
    path = export(config, tmp_path / f"x.{fmt}", fmt)
    edit, kind = EDITS[name]
    lines = lines_of(path)
    line = edit(lines, fmt)
    path.write_bytes("".join(lines).encode())
    code, report = verdict(tmp_path, path, public)
    assert code == 1 and report["verdict"] == "damaged", report
    assert report["damage"] == {"kind": kind, "line": line,
                                "detail": report["damage"]["detail"]}, report  # type: ignore[index]


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_a_manifest_from_another_export_is_refused(trail: tuple[Path, Path], tmp_path: Path,
                                                   fmt: str) -> None:
    config, public = trail
    mine = lines_of(export(config, tmp_path / f"a.{fmt}", fmt, "--user", "user1"))
    other = lines_of(export(config, tmp_path / f"b.{fmt}", fmt, "--user", "user2"))
    path = tmp_path / f"x.{fmt}"
    path.write_bytes("".join(mine[:-1] + other[-1:]).encode())
    code, report = verdict(tmp_path, path, public)
    assert code == 1 and report["damage"]["kind"] == "foreign_manifest", report  # type: ignore[index]
    assert report["damage"]["line"] == len(mine)  # type: ignore[index]


def test_a_csv_injection_attempt_is_named(trail: tuple[Path, Path], tmp_path: Path) -> None:
    config, public = trail
    path = export(config, tmp_path / "x.csv", "csv")
    lines = lines_of(path)
    line = next(i for i, text in enumerate(lines, 1) if "'=evil" in text)
    lines[line - 1] = lines[line - 1].replace("'=evil", '=HYPERLINK(""http://x"")')
    path.write_bytes("".join(lines).encode())
    code, out, err = clean_run(tmp_path, "--export", str(path), "--public-key", str(public),
                               authgate=True)
    assert code == 1 and f"DAMAGED line {line}: csv_injection" in err, (out, err)


def test_cannot_check_is_exit_2_never_a_verdict(trail: tuple[Path, Path],
                                                tmp_path: Path) -> None:
    config, public = trail
    path = export(config, tmp_path / "x.jsonl", "jsonl")
    code, out, err = clean_run(tmp_path, "--export", str(path), "--json", authgate=True)
    assert code == 2 and json.loads(out)["verdict"] == "cannot_check", (out, err)
    path.chmod(0)
    try:
        code, report = verdict(tmp_path, path, public)
    finally:
        path.chmod(0o600)
    assert (code, report["verdict"]) == (2, "cannot_check") or os.geteuid() == 0
    hmac_config = make_config(tmp_path / "hmac", signing_key=False)
    signed_by_hmac = export(hmac_config, tmp_path / "h.jsonl", "jsonl")
    # an auditor who trusts an Ed25519 key expects that key's signature: an HMAC-signed
    # file (another, keyless deployment, or a re-labelled manifest) is untrusted, exit 1,
    # like any other key (issue 16: never a "could not check" an insider can produce)
    code, report = verdict(tmp_path, signed_by_hmac, public)
    assert (code, report["verdict"]) == (1, "damaged"), report
    assert report["damage"]["kind"] == "untrusted_key", report  # type: ignore[index]
    assert "HMAC" in str(report["damage"]), report


def test_another_key_is_not_trusted(trail: tuple[Path, Path], tmp_path: Path) -> None:
    config, _public = trail
    path = export(config, tmp_path / "x.csv", "csv")
    other = make_config(tmp_path / "other")
    stranger = tmp_path / "stranger.pem"
    stranger.write_text(cli(other, "public-key").split("\n", 1)[1])
    code, report = verdict(tmp_path, path, stranger)
    assert code == 1 and report["damage"]["kind"] == "untrusted_key", report  # type: ignore[index]


def test_the_key_holder_also_checks_each_record_mac(trail: tuple[Path, Path],
                                                    tmp_path: Path) -> None:
    config, public = trail
    path = export(config, tmp_path / "x.jsonl", "jsonl")
    result = CliRunner().invoke(audit_group, ["verify", "--export", str(path), "--json"],
                                obj=Context(str(config)))
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["record_macs"] == "checked"
