"""Issue 17 item 11: ``make run`` shows every role: a staff login, an admin login and an
auditor login, each with its enrolment code and what to try."""
from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from authgate.cli.demo import DEMO_PEOPLE, _ensure_demo_users, demo_guide
from authgate.directory.file import FileDirectory
from authgate.policy.files import load_policy_set
from tests.fixtures.net import free_port
from tests.integration.harness import Browser

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


def _guide_of(out: Path, proc: subprocess.Popen[bytes]) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        text = out.read_text(encoding="utf-8", errors="replace") if out.exists() else ""
        if "Stop with Ctrl-C." in text:
            return text
        assert proc.poll() is None, text
        time.sleep(0.2)
    raise AssertionError(f"authgate demo printed no guide: {out.read_text()[-2000:]}")


def _enrol_with_code(browser: Browser, portal: str, rd: str, code: str) -> str:
    """The printed code on the page a first sign-in is sent to; the page it leads to."""
    token = browser.csrf_token(f"{portal}/enrol?rd={rd}")
    answer = browser.post(f"{portal}/enrol/code", data={"csrf_token": token, "rd": rd,
                                                         "code": code})
    assert answer.status_code == 303, (answer.status_code, answer.text[:500])
    return str(browser.follow(answer).text)


@pytest.mark.integration
def test_every_role_can_be_tried_from_what_make_run_prints(tmp_path: Path) -> None:
    """``authgate demo`` as ``make run`` starts it: each printed login and code works for
    what the guide says to try (issue 17 item 11); the security key and the authenticator
    app themselves are walked in tests/browser."""
    gateway_port, app_port = free_port(), free_port()
    out = tmp_path / "demo.out"
    command = [str(Path(sys.executable).with_name("authgate")), "demo", "--instance",
               str(tmp_path / "demo"), "--gateway-port", str(gateway_port),
               "--app-port", str(app_port)]
    with out.open("wb") as sink:
        proc = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        guide = _guide_of(out, proc)
        people = {m[1]: m[2] for m in re.finditer(r"^\s+\w+\s+(\S+) / (\S+)$", guide, re.M)}
        codes = re.findall(r"enrolment code (\S+) \(first sign-in device\)", guide)
        logins = dict(zip(people, codes, strict=True))
        assert list(people) == ["demo", "demo-admin", "demo-auditor"], guide
        app, portal = f"http://localhost:{app_port}", f"http://localhost:{gateway_port}"
        _staff_signs_in_to_the_sample_app(app, people["demo"], tmp_path)
        for user, page, offered in (("demo-admin", "/admin", "security key"),
                                    ("demo-auditor", "/audit/", "authenticator app")):
            browser = Browser(tmp_path)
            answer = browser.login(f"{portal}/login?rd={portal}{page}", user, people[user])
            assert "enrolment code" in answer.text.lower(), (user, answer.text[:800])
            chosen = _enrol_with_code(browser, portal, f"{portal}{page}", logins[user])
            assert offered in chosen.lower(), (user, chosen[:800])
            browser.close()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)


def _staff_signs_in_to_the_sample_app(app: str, password: str, tmp_path: Path) -> None:
    browser = Browser(tmp_path)
    first = browser.get(f"{app}/")
    assert first.status_code == 302, first.status_code
    back = browser.login(first.headers["Location"], "demo", password)
    assert back.headers["Location"].startswith(app), back.headers.get("Location")
    assert browser.follow(back).status_code == 200
    refused = browser.get(f"{app}/forbidden/")
    assert refused.status_code == 403 and "Sign out or switch account" in refused.text
    browser.close()
