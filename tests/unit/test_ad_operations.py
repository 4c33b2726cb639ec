"""Operator mistakes around Active Directory (issue 15 items 1, 4, 8, 10), without a DC:
the service-bind circuit's shared store, the CA file, the policy commands' directory, and
the shipped regulation defaults against common AD thresholds."""
from __future__ import annotations

import shutil
import threading
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from authgate.cli import main
from authgate.config import load_settings
from authgate.core.clock import FixedClock
from authgate.core.errors import ConfigError
from authgate.directory.ldap_circuit import (
    BindRefusedByAd,
    ServiceBindCircuit,
    ServiceBindRefused,
)
from authgate.policy.files import load_policy_set
from authgate.regulation.limits import check_lockout_margin
from authgate.storage.engine import make_engine, migrate
from authgate.storage.sql_service_binds import SqlServiceBindStore
from tests.conftest import TEST_ENCRYPTION_KEY, TEST_SECRET

ROOT = Path(__file__).resolve().parents[2]
DN = "CN=svc-authgate,OU=Service,DC=city,DC=test"


def _circuit(tmp_path: Path, clock: FixedClock) -> ServiceBindCircuit:
    url = f"sqlite:///{tmp_path / 'circuit.db'}"
    migrate(url)
    return ServiceBindCircuit(store=SqlServiceBindStore(make_engine(url)), key=b"k" * 32,
                              clock=clock, wait_seconds=5.0)


def test_one_ad_failure_per_password_across_threads_and_instances(tmp_path: Path) -> None:
    """Two circuits on one database (two instances), 16 threads each: AD is asked once."""
    clock = FixedClock()
    circuits = [_circuit(tmp_path, clock), _circuit(tmp_path, clock)]
    sent: list[str] = []
    lock = threading.Lock()

    def refused_bind() -> None:
        with lock:
            sent.append("bind")
        raise BindRefusedByAd("52e", "invalidCredentials data 52e")

    def attempt(circuit: ServiceBindCircuit) -> None:
        with pytest.raises(ServiceBindRefused) as info:
            circuit.bind(bind_dn=DN, password="wrong", attempt=refused_bind)
        assert info.value.reason == "service_bind_refused" and "52e" in str(info.value)

    threads = [threading.Thread(target=attempt, args=(c,)) for c in circuits for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sent == ["bind"]
    # a new password gets its one trial; the refused one stays refused for every instance
    assert circuits[1].bind(bind_dn=DN, password="right", attempt=lambda: "conn") == "conn"
    with pytest.raises(ServiceBindRefused):
        circuits[0].bind(bind_dn=DN, password="wrong", attempt=refused_bind)
    assert sent == ["bind"]
    assert circuits[0].reset(DN) == 2  # the operator's reset: the next bind tries again
    with pytest.raises(ServiceBindRefused):
        circuits[0].bind(bind_dn=DN, password="wrong", attempt=refused_bind)
    assert sent == ["bind", "bind"]


def test_an_outage_during_the_trial_lets_the_next_caller_try(tmp_path: Path) -> None:
    from authgate.core.errors import DirectoryUnavailable

    circuit = _circuit(tmp_path, FixedClock())

    def down() -> None:
        raise DirectoryUnavailable("no domain controller answered")
    with pytest.raises(DirectoryUnavailable):
        circuit.bind(bind_dn=DN, password="pw", attempt=down)
    assert circuit.bind(bind_dn=DN, password="pw", attempt=lambda: 1) == 1


def _write_config(tmp_path: Path, **ldap: object) -> Path:
    data = {
        "mode": "production",
        "server": {"public_url": "https://localhost:9091"},
        "storage": {"url": f"sqlite:///{tmp_path / 'a.db'}"},
        "directory": {"backend": "ldap", "ldap": {
            "urls": ["ldaps://localhost:1"], "base_dn": "DC=city,DC=test", "bind_dn": DN,
            "bind_password": "x" * 12, **ldap}},
        "policy": {"path": "my-policies", "require_approval": False},
        "secrets": {"session_key": TEST_SECRET, "audit_key": TEST_SECRET,
                    "encryption_keys": [TEST_ENCRYPTION_KEY]},
    }
    conf_dir = tmp_path / "etc"
    conf_dir.mkdir(exist_ok=True)
    path = conf_dir / "authgate.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def write_test_ca(path: Path) -> None:
    """A self-signed CA certificate in PEM."""
    from datetime import UTC, datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1).not_valid_before(now)
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def test_relative_ca_file_resolves_beside_the_config_file(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    config = _write_config(tmp_path, ca_file="dc-ca.pem")
    write_test_ca(config.parent / "dc-ca.pem")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    settings = load_settings(config, environ={})
    assert settings.directory.ldap.ca_file == str(config.parent / "dc-ca.pem")


@pytest.mark.parametrize("content", [None, "directory", b"not a certificate\n", b"\xff\xfe\x00"])
def test_bad_ca_file_is_a_config_error_not_a_traceback(tmp_path: Path, content: object) -> None:
    config = _write_config(tmp_path, ca_file="ca.pem")
    target = config.parent / "ca.pem"
    if content == "directory":
        target.mkdir()
    elif isinstance(content, bytes):
        target.write_bytes(content)
    with pytest.raises(ConfigError) as info:
        load_settings(config, environ={})
    assert any(p.startswith("directory.ldap.ca_file: ") for p in info.value.problems)
    runner = CliRunner()
    for args in (["check-config"], ["directory", "check"]):
        result = runner.invoke(main, ["--config", str(config), *args])
        assert result.exit_code in (1, 2), result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)
        assert "directory.ldap.ca_file" in result.output


def test_policy_commands_use_the_configured_directory(tmp_path: Path) -> None:
    config = _write_config(tmp_path, ca_file="ca.pem")
    write_test_ca(config.parent / "ca.pem")
    configured = tmp_path / "served-policies"
    shutil.copytree(ROOT / "tests" / "policies", configured,
                    ignore=shutil.ignore_patterns("approvals.yaml"))
    text = config.read_text().replace("path: my-policies", f"path: {configured}")
    config.write_text(text)
    runner = CliRunner()
    result = runner.invoke(main, ["--config", str(config), "policy", "check"],
                           env={"AUTHGATE_POLICIES": str(tmp_path / "other")})
    assert result.exit_code == 0, result.output
    assert f"policy directory: {configured}" in result.output
    explicit = runner.invoke(main, ["--config", str(config), "policy", "check", "--policies",
                                    str(tmp_path / "missing")])
    assert explicit.exit_code == 1
    assert f"policy directory: {tmp_path / 'missing'}" in explicit.output
    test = runner.invoke(main, ["--config", str(config), "policy", "test"])
    assert f"policy directory: {configured}" in test.output


@pytest.mark.parametrize("policies", ["policies", "tests/policies"])
@pytest.mark.parametrize("threshold", [3, 5, 10])
def test_shipped_regulation_is_accepted_by_common_ad_thresholds(policies: str,
                                                                threshold: int) -> None:
    regulation = load_policy_set(ROOT / policies).settings.regulation
    margin = check_lockout_margin(regulation.max_failures_per_user, threshold,
                                  ad_window=timedelta(minutes=30), policy_window=regulation.window)
    assert margin.ok, margin.messages
