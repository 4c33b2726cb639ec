"""Issue 17 item 11: ``make run`` shows every role: a staff login, an admin login and an
auditor login, each with its enrolment code and what to try."""
from __future__ import annotations

from pathlib import Path

from authgate.cli.demo import DEMO_PEOPLE, _ensure_demo_users, demo_guide
from authgate.directory.file import FileDirectory
from authgate.policy.files import load_policy_set

ROOT = Path(__file__).resolve().parents[2]


def test_demo_makes_one_person_per_role_once(tmp_path: Path) -> None:
    users = tmp_path / "users.yaml"
    logins = _ensure_demo_users(tmp_path, users)
    assert list(logins) == ["demo", "demo-admin", "demo-auditor"]
    directory = FileDirectory(users)
    roles = load_policy_set(ROOT / "policies").settings.roles
    groups = {u: directory.authenticate(username=u, password=p).groups
              for u, p in logins.items()}
    assert groups["demo-admin"] & roles.admin_groups
    assert groups["demo-auditor"] & roles.auditor_groups
    assert not groups["demo"] & (roles.admin_groups | roles.auditor_groups)
    assert not groups["demo-admin"] & roles.auditor_groups  # separation of duties
    assert _ensure_demo_users(tmp_path, users) == logins  # a rerun keeps the passwords
    assert (tmp_path / "DEMO-LOGIN.txt").stat().st_mode & 0o777 == 0o600


def test_an_older_demo_instance_gains_the_admin_and_the_auditor(tmp_path: Path) -> None:
    users = tmp_path / "users.yaml"
    FileDirectory(users).add_user("demo", "old-demo-password", groups=["City-Staff"])
    (tmp_path / "DEMO-LOGIN.txt").write_text("demo old-demo-password\n", encoding="utf-8")
    logins = _ensure_demo_users(tmp_path, users)
    assert logins["demo"] == "old-demo-password" and len(logins) == len(DEMO_PEOPLE)
    assert FileDirectory(users).lookup("demo-admin") is not None


def test_the_guide_names_each_login_its_code_and_what_to_try(tmp_path: Path) -> None:
    logins = {"demo": "pw-staff", "demo-admin": "pw-admin", "demo-auditor": "pw-audit"}
    text = demo_guide(app="http://localhost:8080", portal="http://localhost:9091",
                      config=Path("instance/demo/authgate.yaml"), logins=logins,
                      codes={"demo": "CODE-S", "demo-admin": "CODE-A", "demo-auditor": ""})
    for user, password in logins.items():
        assert f"{user} / {password}" in text
    assert "CODE-S" in text and "CODE-A" in text and "already set up" in text
    assert "http://localhost:9091/admin" in text and "lift the ban" in text
    assert "http://localhost:9091/audit/" in text
    assert "authgate --config instance/demo/authgate.yaml audit verify --export" in text


def test_a_rerun_on_other_ports_serves_those_ports(tmp_path: Path) -> None:
    from authgate.cli.demo import _write_config

    config = _write_config(tmp_path, 9091)
    secret = config.read_text(encoding="utf-8").split("session_key: ")[1].split()[0]
    _write_config(tmp_path, 9291)
    text = config.read_text(encoding="utf-8")
    assert "http://localhost:9291" in text and secret in text and text.startswith("# ")
