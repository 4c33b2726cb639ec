"""A real Samba AD DC for tests, started by ``scripts/samba-dc.sh`` (never a skip).

Reusable outside ``tests/ad`` (web integration tests, benchmarks)::

    with samba_dc(tmp_dir) as dc:
        dc.ldaps_url, dc.bind_dn, dc.password("alice") ...

Only one DC can run per machine (ports 389/636 are fixed): if they are taken, this fails
with the reason instead of waiting or killing anything.
"""
from __future__ import annotations

import shlex
import shutil
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "samba-dc.sh"
INSTALL_HINT = ("apt-get install --no-install-recommends samba samba-ad-dc samba-ad-provision "
                "samba-dsdb-modules samba-vfs-modules winbind krb5-user ldb-tools smbclient attr "
                "acl openssl faketime")


class SambaUnavailable(RuntimeError):
    """The DC cannot be provided: the message says why and what to do."""


@dataclass(frozen=True)
class DcFacts:
    """What ``DIR/dc.env`` says about the running DC."""

    dir: Path
    env: dict[str, str]

    def __getattr__(self, name: str) -> str:
        try:
            return self.env["AD_" + name.upper()]
        except KeyError:
            raise AttributeError(name) from None

    def password(self, user: str) -> str:
        key = "AD_BIND_PASSWORD" if user == "svc-authgate" else "AD_USER_PASSWORD"
        return self.env[key]


def read_env(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = shlex.split(value)[0] if value else ""
    return values


def ports_in_use() -> list[int]:
    taken = []
    for port in (389, 636):
        with socket.socket() as s:
            s.settimeout(0.2)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                taken.append(port)
    return taken


def run_script(action: str, directory: Path, *, timeout: float = 120) -> str:
    proc = subprocess.run(["bash", str(SCRIPT), action, str(directory)], capture_output=True,
                          text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        log = directory / "log" / "provision.log"
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:]) if log.exists() else ""
        raise SambaUnavailable(f"samba-dc.sh {action} failed ({proc.returncode}): "
                               f"{proc.stderr.strip()}\n{tail}")
    return proc.stdout


def start(directory: Path) -> DcFacts:
    if shutil.which("samba") is None and not Path("/usr/sbin/samba").exists():
        raise SambaUnavailable(
            f"Samba is not installed; the AD tests need a real DC: {INSTALL_HINT}")
    taken = ports_in_use()
    if taken:
        raise SambaUnavailable(f"ports {taken} are in use: another DC (or LDAP server) is running "
                               "on this machine; stop it (scripts/samba-dc.sh stop DIR) and rerun")
    run_script("start", directory)
    return DcFacts(directory, read_env(directory / "dc.env"))


def stop(directory: Path) -> None:
    run_script("stop", directory, timeout=30)


@contextmanager
def samba_dc(directory: Path) -> Iterator[DcFacts]:
    """Provision and start a DC in ``directory``; always stop it afterwards."""
    try:
        facts = start(directory)
    except BaseException:
        stop(directory)  # a half-started DC must not keep the ports
        raise
    try:
        yield facts
    finally:
        stop(directory)
