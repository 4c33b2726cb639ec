"""Strict configuration: every problem reported with its path; weak secrets refused."""
from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest

from authgate.config import load_settings, settings_from_mapping
from authgate.core.errors import ConfigError
from tests.unit.test_ad_operations import write_test_ca

GOOD_SECRET = "s" * 40
KEY = "k1:" + "A" * 43 + "="


def problems_of(data: dict) -> list[str]:  # type: ignore[type-arg]
    with pytest.raises(ConfigError) as info:
        settings_from_mapping(data)
    return info.value.problems


def test_all_problems_reported_with_paths() -> None:
    problems = problems_of({
        "mode": "prod",
        "server": {"bogus": 1, "trusted_proxies": ["10.0.0.0/33"], "max_form_bytes": "big"},
        "session": {"idle_timeout": "5q"},
        "storage": {"url": 5},
        "directory": {"backend": "nis"},
    })
    joined = "\n".join(problems)
    for expected in ("mode: must be one of", "server.bogus: unknown key",
                     "server.max_form_bytes: expected a int",
                     "session.idle_timeout: not a duration",
                     "storage.url: expected a string", "directory.backend: must be one of",
                     "server.trusted_proxies[0]: not a CIDR", "secrets.session_key: missing"):
        assert expected in joined, f"{expected!r} not in {joined}"


def test_production_refuses_missing_short_and_demo_secrets() -> None:
    assert any("secrets.session_key: missing" in p for p in problems_of({}))
    short = problems_of({"secrets": {"session_key": "short", "audit_key": GOOD_SECRET}})
    assert any("session_key: too short" in p for p in short)
    demo = problems_of({"secrets": {"session_key": "demo-insecure-" + "x" * 30,
                                    "audit_key": GOOD_SECRET}})
    assert any("demo secret is refused" in p for p in demo)


def test_demo_mode_accepts_the_labelled_demo_secret() -> None:
    s = settings_from_mapping({"mode": "demo", "server": {"public_url": "http://localhost:1"},
                               "secrets": {"session_key": "demo-insecure-" + "x" * 30}})
    assert s.mode == "demo"


def test_production_refuses_http_public_url() -> None:
    problems = problems_of({"server": {"public_url": "http://auth.city.test"},
                            "secrets": {"session_key": GOOD_SECRET, "audit_key": GOOD_SECRET,
                                        "encryption_keys": [KEY]}})
    assert problems == ["server.public_url: must be https outside demo mode"]


def test_file_env_and_secret_file(tmp_path: Path) -> None:
    key_file = tmp_path / "audit.key"
    key_file.write_text(GOOD_SECRET + "\n")
    (tmp_path / "enc.keys").write_text(KEY + "\n\nk0:" + "B" * 43 + "=\n")
    config = tmp_path / "authgate.yaml"
    config.write_text("server:\n  public_url: https://auth.city.test\n"
                      "secrets:\n  audit_key_file: audit.key\n  encryption_keys_file: enc.keys\n"
                      "session:\n  idle_timeout: 15m\n")
    s = load_settings(config, environ={"AUTHGATE_SECRETS__SESSION_KEY": GOOD_SECRET,
                                       "AUTHGATE_SESSION__MAX_AGE": "8h",
                                       "AUTHGATE_SERVER__TRUSTED_PROXIES": "[10.1.0.0/16]"})
    assert s.secrets.audit_key is not None and s.secrets.audit_key.reveal() == GOOD_SECRET
    assert s.session.idle_timeout == timedelta(minutes=15)
    assert s.session.max_age == timedelta(hours=8)
    assert s.server.trusted_proxies == ("10.1.0.0/16",)
    assert [k.reveal()[:3] for k in s.secrets.encryption_keys] == ["k1:", "k0:"]


def test_secrets_never_print(tmp_path: Path) -> None:
    s = settings_from_mapping({"secrets": {"session_key": GOOD_SECRET, "audit_key": GOOD_SECRET,
                                           "encryption_keys": [KEY]},
                               "server": {"public_url": "https://a.city.test"}})
    assert GOOD_SECRET not in repr(s) and GOOD_SECRET not in str(s.secrets)


def test_unreadable_secret_file_is_an_error(tmp_path: Path) -> None:
    problems = problems_of({"secrets": {"session_key_file": str(tmp_path / "nope"),
                                        "audit_key": GOOD_SECRET}})
    assert any("secrets.session_key_file: cannot read" in p for p in problems)


def test_bad_yaml_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("server: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings(bad, environ={})
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(tmp_path / "missing.yaml", environ={})


@pytest.mark.parametrize("keys,message", [
    ([], "secrets.encryption_keys: missing"),
    (["nokid"], "expected <kid>:<base64 of 32 bytes>"),
    (["k1:c2hvcnQ="], "expected <kid>:<base64 of 32 bytes>"),
    ([KEY, KEY], "duplicate key id"),
])
def test_encryption_keys_validated(keys: list[str], message: str) -> None:
    problems = problems_of({"server": {"public_url": "https://a.city.test"},
                            "secrets": {"session_key": GOOD_SECRET, "audit_key": GOOD_SECRET,
                                        "encryption_keys": keys}})
    assert any(message in p for p in problems), problems


LDAP = {"urls": ["ldaps://dc1.city.test"], "base_dn": "DC=city,DC=test",
        "bind_dn": "CN=svc,DC=city,DC=test", "bind_password": "service-password",
        "login_attribute": "userPrincipalName"}


def test_ldap_rules_reported_with_paths() -> None:
    """The rules ``LdapDirectory`` enforces are load errors, each with its path."""
    problems = problems_of({"directory": {"backend": "ldap", "ldap": {
        **LDAP, "urls": ["ldaps://dc1.city.test", "ldap://dc2.city.test"],
        "bind_password": "", "connect_timeout": 0}}})
    joined = "\n".join(problems)
    for expected in ("directory.ldap.upn_suffix: required when login_attribute is "
                     "userPrincipalName",
                     "directory.ldap.ca_file: required",
                     "directory.ldap.urls[1]: 'ldap://dc2.city.test': plain LDAP",
                     "directory.ldap.bind_password: empty",
                     "directory.ldap.connect_timeout: must be positive"):
        assert expected in joined, f"{expected!r} not in {joined}"
    assert not any(p.startswith("directory.ldap.urls[0]") for p in problems)


def test_ldap_rules_apply_only_to_the_ldap_backend(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    write_test_ca(ca)
    good = {**LDAP, "upn_suffix": "city.test", "ca_file": str(ca)}
    assert not [p for p in problems_of({"directory": {"backend": "ldap", "ldap": good}})
                if p.startswith("directory.")]
    assert not [p for p in problems_of({"directory": {"ldap": {"urls": ["ldap://x"]}}})
                if p.startswith("directory.")]
    missing = problems_of({"directory": {"backend": "ldap", "ldap": {
        **good, "ca_file": str(tmp_path / "missing.pem")}}})
    assert f"directory.ldap.ca_file: cannot read {tmp_path / 'missing.pem'}: not a file" in missing


def test_check_config_reports_ldap_problems_and_exits_1(tmp_path: Path) -> None:
    """Review §6 #1: ``backend: ldap``, ``login_attribute: userPrincipalName`` and no
    ``ca_file`` printed a traceback; every problem is now printed with its path."""
    import yaml
    from click.testing import CliRunner

    from authgate.cli import main

    config = tmp_path / "authgate.yaml"
    config.write_text(yaml.safe_dump({
        "server": {"public_url": "https://auth.city.test"},
        "secrets": {"session_key": GOOD_SECRET, "audit_key": GOOD_SECRET,
                    "encryption_keys": [KEY]},
        "directory": {"backend": "ldap", "ldap": LDAP}}))
    result = CliRunner().invoke(main, ["--config", str(config), "check-config"], env={
        name: None for name in os.environ if name.startswith("AUTHGATE_")})
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)  # not a traceback
    lines = result.output.splitlines()
    assert "error: directory.ldap.upn_suffix: required when login_attribute is " \
           "userPrincipalName" in lines
    assert ("error: directory.ldap.ca_file: required: the DC certificate is verified "
            "against it") in lines
    assert lines[-1] == "2 problem(s) found"
    assert "Traceback" not in result.output
