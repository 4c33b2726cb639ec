"""Issue 18 item 6: the deployment guide is executed, so what it says cannot drift from what
works. ``docs/deployment.md`` ("From a fresh Debian 12 VM to a protected app") is the source:
its ``<!-- deploy.sh -->`` shell blocks, in order, are ``deploy/install/deploy.sh`` byte for
byte (``python -m tests.integration.test_deployment_guide`` rewrites the script from the
page). The integration test runs that script as root against a throwaway root directory
(``ROOT``: nothing is written to the real /etc), the real Samba AD DC, real nginx with the
self-signed certificate the script makes, and then starts what the installed systemd units
would start (systemd itself cannot run here; ``systemd-analyze verify`` checks the units),
and signs a directory user in through nginx to a sample app.
"""
from __future__ import annotations

import configparser
import os
import re
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.integration.harness import (
    ROOT,
    Browser,
    Proc,
    _spawn,
    free_port,
    make_prefix,
    start_gunicorn,
    stop,
    wait_until,
)

DOC = ROOT / "docs" / "deployment.md"
SCRIPT = ROOT / "deploy" / "install" / "deploy.sh"
UNITS = ROOT / "deploy" / "systemd"
MARK = "<!-- deploy.sh -->"
HEADER = """#!/bin/bash
# From a fresh Debian 12 VM to a protected app: every command of docs/deployment.md, in order.
# Generated from that page's `<!-- deploy.sh -->` blocks (python -m
# tests.integration.test_deployment_guide rewrites it); a test fails if the two differ.
# Run as root from the checkout: REVIEWER="Jane Doe, CISO" ./deploy/install/deploy.sh
set -euo pipefail
"""
#: what the hardened units must say (systemd.exec(5)); "" means the key is present and empty
HARDENING = {"NoNewPrivileges": "yes", "ProtectSystem": "strict", "PrivateTmp": "yes",
             "ProtectHome": "yes", "PrivateDevices": "yes", "RestrictSUIDSGID": "yes",
             "ProtectKernelTunables": "yes", "ProtectKernelModules": "yes",
             "ProtectControlGroups": "yes", "SystemCallArchitectures": "native"}


def guide_blocks(text: str) -> list[str]:
    """The marked shell blocks of the guide, in order."""
    pattern = re.compile(re.escape(MARK) + r"\n```sh\n(.*?)\n```\n", re.DOTALL)
    return pattern.findall(text)


def script_from_guide() -> str:
    return HEADER + "".join(f"\n{block}\n" for block in guide_blocks(DOC.read_text("utf-8")))


def read_unit(path: Path) -> dict[str, str]:
    """``[Service]`` keys of a unit file (the last value of a repeated key)."""
    parser = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(path.read_text(encoding="utf-8"))
    return dict(parser["Service"])


def test_the_script_is_the_guides_commands_byte_for_byte() -> None:
    blocks = guide_blocks(DOC.read_text(encoding="utf-8"))
    assert len(blocks) >= 10, "the guide lost its marked deploy.sh blocks"
    assert SCRIPT.read_text(encoding="utf-8") == script_from_guide(), (
        "deploy/install/deploy.sh differs from docs/deployment.md: edit the page, then run "
        "python -m tests.integration.test_deployment_guide")
    assert os.access(SCRIPT, os.X_OK)


@pytest.mark.parametrize("unit", ["authgate.service", "authgate-nginx.service"])
def test_the_shipped_units_are_hardened(unit: str) -> None:
    service = read_unit(UNITS / unit)
    for key, value in HARDENING.items():
        assert service.get(key) == value, (unit, key, service.get(key))
    assert service.get("ReadWritePaths"), unit
    if unit == "authgate.service":
        assert service["CapabilityBoundingSet"] == "", "authgate needs no capability"
        assert service["User"] == "${SERVICE_USER}"
        assert "authgate serve" in service["ExecStart"]
    else:
        assert set(service["CapabilityBoundingSet"].split()) <= {
            "CAP_NET_BIND_SERVICE", "CAP_SETUID", "CAP_SETGID", "CAP_CHOWN", "CAP_DAC_OVERRIDE"}


# -- the guide, run -------------------------------------------------------------------------
def _run_guide(root: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["bash", str(SCRIPT)], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, f"deploy.sh failed:\n{done.stdout}\n{done.stderr}"
    return done


def _start_unit(unit: Path, name: str, run_dir: Path, env: dict[str, str]) -> Proc:
    """What systemd would start: the unit's ExecStart, Environment and WorkingDirectory."""
    service = read_unit(unit)
    full = dict(env)
    for assignment in shlex.split(service.get("Environment", "")):
        key, _, value = assignment.partition("=")
        full[key] = value
    args = shlex.split(service["ExecStart"])
    cwd = Path(service["WorkingDirectory"]) if "WorkingDirectory" in service else None
    return Proc(name, _spawn(name, args, run_dir / f"{name}.log", full, cwd=cwd),
                run_dir / f"{name}.log")


@pytest.mark.integration
def test_the_guide_deploys_a_protected_app_on_ad_behind_nginx_with_tls(
        ad: object, tmp_path: Path) -> None:
    """``ad``: the session's Samba DC (tests/fixtures/samba_session.py)."""
    root = make_prefix()  # world-traversable: nginx's workers read below it
    ports = {name: free_port() for name in
             ("PORTAL_PORT", "APP_PORT", "GATEWAY_PORT", "VERIFY_PORT", "UPSTREAM")}
    assert len(set(ports.values())) == len(ports)
    calls = tmp_path / "systemctl.calls"
    fake_systemctl = tmp_path / "systemctl"
    fake_systemctl.write_text(f'#!/bin/sh\necho "$@" >>{calls}\n')
    fake_systemctl.chmod(0o755)
    env = {**os.environ,
           "PYTHONPATH": str(ROOT), "ROOT": str(root), "SRC": str(ROOT),
           "VENV": str(Path(sys.executable).parent.parent), "SYSTEMCTL": str(fake_systemctl),
           "PORTAL_HOST": "localhost", "APP_HOST": "localhost", "RP_ID": "localhost",
           "LISTEN_V4": "127.0.0.1", "LISTEN_V6": "[::1]",
           "APP_UPSTREAM": f"127.0.0.1:{ports['UPSTREAM']}",
           **{k: str(v) for k, v in ports.items() if k != "UPSTREAM"},
           "AD_URLS": ad.ldaps_url, "AD_BASE_DN": ad.base_dn,  # type: ignore[attr-defined]
           "AD_BIND_DN": ad.bind_dn,  # type: ignore[attr-defined]
           "AD_BIND_PASSWORD_FILE": ad.bind_password_file,  # type: ignore[attr-defined]
           "AD_CA_FILE": ad.ca_file, "AD_UPN_SUFFIX": ad.upn_suffix,  # type: ignore[attr-defined]
           "AD_NETBIOS": ad.domain, "FIRST_ADMIN": "adam",  # type: ignore[attr-defined]
           "REVIEWER": "Test Reviewer", "KEEP_DEMO_POLICY": "1", "SERVICE_USER": "root"}
    env.pop("AUTHGATE_CONFIG", None)
    procs: list[Proc] = []
    try:
        done = _run_guide(root, env)
        etc = root / "etc" / "authgate"
        _check_installed_files(etc, root, done.stdout, calls)
        run_dir = tmp_path / "run"
        procs.append(start_gunicorn(
            "authgate.demo.sample_app:app", ports["UPSTREAM"], {}, workers=1, run_dir=run_dir,
            name="upstream", ready_path="/ready/whoami.json",
            ready=lambda r: r.status_code == 200 and r.json().get("app") == "sample"))
        units = root / "etc" / "systemd" / "system"
        gateway = _start_unit(units / "authgate.service", "authgate", run_dir, env)
        procs.append(gateway)
        for port in (ports["GATEWAY_PORT"], ports["VERIFY_PORT"]):
            url = f"http://127.0.0.1:{port}/healthz"
            wait_until(lambda u=url: requests.get(u, timeout=1).text.strip() == "ok",  # type: ignore[misc]
                       gateway, timeout=60)
        nginx = _start_unit(units / "authgate-nginx.service", "nginx", run_dir, env)
        procs.append(nginx)
        alice = _sign_in_through_nginx(etc, ports, nginx, ad)
        try:
            _run_compromise_runbook(root, env, gateway, alice, f"https://localhost:"
                                    f"{ports['APP_PORT']}/guide/page?x=1")
        finally:
            alice.close()
    finally:
        for proc in reversed(procs):
            stop(proc)
        shutil.rmtree(root, ignore_errors=True)


def _check_installed_files(etc: Path, root: Path, stdout: str, calls: Path) -> None:
    for key in ("session_key", "audit_key", "encryption_keys", "audit-signing.pem",
                "ad_bind_password", "tls/server.key"):
        mode = stat.S_IMODE((etc / key).stat().st_mode)
        assert mode == 0o600, (key, oct(mode))
    assert "Enrolment code" in stdout or "enrolment code" in stdout.lower(), stdout[-2000:]
    assert calls.read_text().splitlines() == [
        "daemon-reload", "disable --now nginx.service",
        "enable --now authgate.service authgate-nginx.service"]
    units = sorted((root / "etc" / "systemd" / "system").glob("*.service"))
    verified = subprocess.run(["systemd-analyze", "verify", *map(str, units)],
                              capture_output=True, text=True, check=False)
    assert verified.returncode == 0 and not verified.stderr.strip(), verified.stderr
    for unit in units:
        left = re.findall(r"\$\{[A-Z_]+\}", unit.read_text(encoding="utf-8"))
        assert not left, f"{unit.name}: placeholders left unfilled: {left}"


def _sign_in_through_nginx(etc: Path, ports: dict[str, int], nginx: Proc,
                           ad: object) -> Browser:
    """alice (AD) signs in through nginx; returns her browser, signed in."""
    app = f"https://localhost:{ports['APP_PORT']}"
    ca = etc / "tls" / "server.pem"  # the script's self-signed certificate is the anchor

    def ready() -> bool:
        r = requests.get(f"{app}/", verify=str(ca), allow_redirects=False, timeout=2)
        return r.status_code == 302

    wait_until(ready, nginx)
    browser = Browser(ca)
    first = browser.get(f"{app}/guide/page?x=1")
    assert first.status_code == 302, first.text[:300]
    login = first.headers["Location"]
    assert login.startswith(f"https://localhost:{ports['PORTAL_PORT']}/login?rd="), login
    done = browser.login(login, "alice", ad.password("alice"))  # type: ignore[attr-defined]
    assert done.status_code == 303, done.text[:500]
    assert done.headers["Location"] == f"{app}/guide/page?x=1"
    page = browser.get(f"{app}/guide/page?x=1")
    assert page.status_code == 200, page.text[:300]
    assert "alice" in page.text
    refused = browser.get(f"{app}/forbidden/")
    assert refused.status_code == 403
    return browser


if __name__ == "__main__":  # rewrite the script from the guide
    SCRIPT.parent.mkdir(parents=True, exist_ok=True)
    SCRIPT.write_text(script_from_guide(), encoding="utf-8")
    SCRIPT.chmod(0o755)
    print(f"wrote {SCRIPT.relative_to(ROOT)} from {DOC.relative_to(ROOT)}")


def _run_compromise_runbook(root: Path, env: dict[str, str], gateway: Proc, alice: Browser,
                            page: str) -> None:
    """The runbook's "Suspected compromise" steps, as written, on the deployed gateway:
    every command succeeds, and alice, signed in before, must sign in again."""
    assert alice.get(page).status_code == 200
    wrapper = str(root / "usr" / "local" / "bin" / "authgate")
    for words in runbook_section_commands("Suspected compromise"):
        if words == ["systemctl", "reload", "authgate"]:
            os.kill(gateway.popen.pid, signal.SIGHUP)  # the unit's ExecReload
            time.sleep(3)
            continue
        args = [wrapper, *(str(root) + w if w.startswith(("/etc/", "/var/")) else w
                           for w in words[1:])]
        done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120,
                              check=False)
        assert done.returncode == 0, (words, done.stdout, done.stderr)
    deadline = time.monotonic() + 30
    while (answer := alice.get(page)).status_code == 200 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert answer.status_code == 302 and "/login?rd=" in answer.headers["Location"]


# -- runbooks -------------------------------------------------------------------------------
RUNBOOKS = ROOT / "docs" / "runbooks.md"


def runbook_commands() -> list[list[str]]:
    """Every ``authgate ...`` line of the runbooks' shell blocks, as argument lists."""
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", RUNBOOKS.read_text("utf-8"), re.DOTALL):
        for line in block.splitlines():
            words = shlex.split(line, comments=True)
            if words[:1] == ["authgate"]:
                commands.append(words[1:])
    return commands


def runbook_section_commands(title: str) -> list[list[str]]:
    """The shell lines of one runbook (``## <title>...``), in order, as argument lists."""
    text = RUNBOOKS.read_text("utf-8")
    section = text[text.index(f"## {title}"):]
    section = section[:section.find("\n## ", 3) % (len(section) + 1)]
    return [shlex.split(line, comments=True)
            for block in re.findall(r"```sh\n(.*?)```", section, re.DOTALL)
            for line in block.splitlines() if line.strip()]


def test_every_runbook_command_and_option_exists() -> None:
    """A runbook read at 3 a.m. must not name a command or an option that is not there."""
    import click

    from authgate.cli import main

    commands = runbook_commands()
    assert len(commands) >= 12, commands
    for words in commands:
        command: click.Command = main
        rest = list(words)
        while isinstance(command, click.Group) and rest and rest[0] in command.commands:
            command = command.commands[rest.pop(0)]
        assert not isinstance(command, click.Group), f"authgate {' '.join(words)}: no command"
        known = {opt for param in command.params for opt in param.opts}
        for word in rest:
            if word.startswith("--"):
                assert word.split("=")[0] in known, f"authgate {' '.join(words)}: no {word}"
