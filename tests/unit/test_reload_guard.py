"""``authgate serve`` passes SIGHUP on only when new workers would boot (#14 finding 5)."""
from __future__ import annotations

import shutil
from pathlib import Path

from authgate.cli.reload_guard import reload_problems
from tests.conftest import TEST_ENCRYPTION_KEY, TEST_POLICIES, TEST_SECRET


def _config(tmp_path: Path, policies: Path, *, approval: bool = False) -> Path:
    config = tmp_path / "authgate.yaml"
    config.write_text(
        "mode: production\n"
        "server: {public_url: 'https://auth.city.test'}\n"
        f"storage: {{url: 'sqlite:///{tmp_path / 'db.sqlite'}'}}\n"
        f"policy: {{path: '{policies}', require_approval: {str(approval).lower()}}}\n"
        f"secrets: {{session_key: '{TEST_SECRET}', audit_key: '{TEST_SECRET}',"
        f" encryption_keys: ['{TEST_ENCRYPTION_KEY}']}}\n")
    return config


def test_a_good_set_may_reload(tmp_path: Path) -> None:
    policies = tmp_path / "policies"
    shutil.copytree(TEST_POLICIES, policies)
    assert reload_problems(str(_config(tmp_path, policies))) == []


def test_a_broken_policy_or_config_keeps_the_running_workers(tmp_path: Path) -> None:
    policies = tmp_path / "policies"
    shutil.copytree(TEST_POLICIES, policies)
    config = _config(tmp_path, policies)
    (policies / "50-broken.yaml").write_text("version: 1\nrules:\n  - {id: x, level: maybe}\n")
    problems = reload_problems(str(config))
    assert problems and "50-broken.yaml" in problems[0]
    (policies / "50-broken.yaml").unlink()
    config.write_text(config.read_text() + "unknown_section: 1\n")
    assert reload_problems(str(config))


def test_an_unapproved_set_does_not_reload_where_approval_is_required(tmp_path: Path) -> None:
    policies = tmp_path / "policies"
    shutil.copytree(TEST_POLICIES, policies)
    problems = reload_problems(str(_config(tmp_path, policies, approval=True)))
    assert problems and "approv" in " ".join(problems).lower()


class _Child:
    def __init__(self) -> None:
        self.signals: list[int] = []

    def poll(self) -> None:
        return None

    def send_signal(self, signum: int) -> None:
        self.signals.append(signum)


def test_serve_passes_on_a_safe_reload_and_holds_back_a_broken_one(tmp_path: Path,
                                                                   capsys) -> None:  # type: ignore[no-untyped-def]
    import signal

    from authgate.cli.serve import forwarder

    policies = tmp_path / "policies"
    shutil.copytree(TEST_POLICIES, policies)
    children = [_Child(), _Child()]
    forward = forwarder(children, config_path=str(_config(tmp_path, policies)))
    forward(signal.SIGHUP, None)
    assert [c.signals for c in children] == [[signal.SIGHUP]] * 2
    (policies / "50-broken.yaml").write_text("version: 1\nrules:\n  - {id: x, level: maybe}\n")
    forward(signal.SIGHUP, None)
    assert [c.signals for c in children] == [[signal.SIGHUP]] * 2  # held back
    assert "reload refused" in capsys.readouterr().err
    forward(signal.SIGTERM, None)  # stopping is never held back
    assert [c.signals for c in children] == [[signal.SIGHUP, signal.SIGTERM]] * 2
