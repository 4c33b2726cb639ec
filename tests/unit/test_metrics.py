"""Each Prometheus family moves with traffic (#18 item 1), read from ``/metrics`` as the
scraper reads it (single process here; tests/integration/test_metrics.py runs the gunicorn
pools in multiprocess mode). Values are compared before and after, since the families are
process-wide."""
from __future__ import annotations

import platform
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from authgate import __version__
from authgate.audit.metrics import APPEND_SAMPLE
from authgate.core.clock import FixedClock
from authgate.core.values import AuditEvent, Outcome
from authgate.directory.ldap_conn import Connector
from tests.conftest import make_settings, verify_headers
from tests.fixtures.net import free_port
from tests.regulation.test_regulator import Build, login
from tests.regulation.test_regulator import build as build  # noqa: PLC0414 - the fixture

Scrape = Callable[[], dict[tuple[str, frozenset[tuple[str, str]]], float]]


def scrape_of(client) -> Scrape:  # type: ignore[no-untyped-def]
    def scrape() -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        response = client.get("/metrics")
        assert response.status_code == 200
        return {(s.name, frozenset(s.labels.items())): s.value
                for family in text_string_to_metric_families(response.get_data(as_text=True))
                for s in family.samples}
    return scrape


def value(samples: dict, name: str, **labels: str) -> float:  # type: ignore[type-arg]
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
def verify_client(services):  # type: ignore[no-untyped-def]
    from authgate.web import create_verify_app

    return create_verify_app({"services": services, "TESTING": True}).test_client()


def test_verify_decisions_count_by_verdict_and_rule(verify_client) -> None:  # type: ignore[no-untyped-def]
    scrape = scrape_of(verify_client)
    before = scrape()
    for _ in range(3):
        assert verify_client.get("/verify", headers=verify_headers("/")).status_code == 401
    assert verify_client.get("/verify", headers=verify_headers(
        "/", host="elsewhere.example")).status_code == 403
    after = scrape()
    moved = {dict(labels)["rule"]: after[(name, labels)] - before.get((name, labels), 0)
             for (name, labels) in after if name == "authgate_verify_decisions_total"
             and dict(labels)["verdict"] == "challenge"}
    assert sorted(moved.values())[-1] == 3  # one rule of the approved set, three times
    assert value(after, "authgate_verify_decisions_total", verdict="error", rule="(none)") \
        - value(before, "authgate_verify_decisions_total", verdict="error", rule="(none)") == 1
    assert all(not rule.startswith("/") and "." not in rule or rule == "(default)"
               for rule in moved)  # rule ids, never a host or a path


def test_a_database_down_is_counted_as_refusals_and_failed_appends(
        verify_client, services) -> None:  # type: ignore[no-untyped-def]
    """Fails closed, and visibly: with the audit table gone every /verify is refused (403),
    and although no record can say so, the decisions and the failed appends are counted."""
    from sqlalchemy import text

    scrape = scrape_of(verify_client)
    before = scrape()
    with services.engine.begin() as conn:
        conn.execute(text("ALTER TABLE audit_events RENAME TO audit_events_gone"))
    for _ in range(3):
        assert verify_client.get("/verify", headers=verify_headers("/")).status_code == 403
    after = scrape()  # the audit figures read at scrape keep their last values

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("authgate_verify_decisions_total", verdict="error", rule="(none)") == 3
    assert delta("authgate_audit_append_failures_total") >= 3
    assert all(delta("authgate_verify_decisions_total", verdict=v, rule=r) <= 0
               for (n, ls) in after if n == "authgate_verify_decisions_total"
               for v, r in [(dict(ls)["verdict"], dict(ls)["rule"])] if v != "error")


def test_verify_latency_histogram_counts_every_request(verify_client) -> None:  # type: ignore[no-untyped-def]
    scrape = scrape_of(verify_client)
    before = value(scrape(), "authgate_verify_duration_seconds_count")
    for _ in range(5):
        verify_client.get("/verify", headers=verify_headers("/"))
    after = scrape()
    assert value(after, "authgate_verify_duration_seconds_count") - before == 5
    assert value(after, "authgate_verify_duration_seconds_sum") > 0


def test_login_steps_are_timed_and_their_outcomes_counted_by_reason(client, auth) -> None:  # type: ignore[no-untyped-def]
    scrape = scrape_of(client)
    before = scrape()
    auth.login(password="wrong password")
    auth.login()
    after = scrape()

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("authgate_login_step_duration_seconds_count", step="password") == 2
    assert delta("authgate_login_outcomes_total", step="password", outcome="failure",
                 reason="invalid_credentials") == 1
    assert delta("authgate_login_outcomes_total", step="password", outcome="success",
                 reason="password_ok") == 1


def test_spray_detections_and_active_bans_move(build: Build) -> None:
    from authgate.web import create_app

    services, _fake = build(spray_distinct_users=5)
    scrape = scrape_of(create_app({"services": services, "TESTING": True}).test_client())
    before = scrape()
    for n in range(1, 8):
        login(services, f"user{n:02d}", "Winter2026!", "192.0.2.66")
    after = scrape()
    assert value(after, "authgate_spray_detections_total") \
        - value(before, "authgate_spray_detections_total") == 2  # the source and the password
    assert value(after, "authgate_active_bans", kind="ip") >= 1
    assert value(before, "authgate_active_bans", kind="ip") == 0


def test_directory_errors_and_up_are_labelled_by_configured_dc(tmp_path: Path) -> None:
    from prometheus_client import REGISTRY

    from authgate.config.secret import Secret
    from authgate.config.settings import LdapDirectorySettings
    from authgate.core.errors import DirectoryUnavailable
    from authgate.core.metrics import directory_bound
    from tests.integration.harness import make_tls

    url = f"ldaps://localhost:{free_port()}"  # nothing listens: refused at once
    connector = Connector(LdapDirectorySettings(
        urls=(url,), base_dn="dc=x", bind_dn="cn=svc", bind_password=Secret("s3cret"),
        ca_file=str(make_tls(tmp_path).ca_cert), connect_timeout=1))
    before = REGISTRY.get_sample_value("authgate_directory_errors_total",
                                       {"server": url, "kind": "unreachable"}) or 0
    with pytest.raises(DirectoryUnavailable):
        connector.open(user="cn=u", password="p")
    assert REGISTRY.get_sample_value("authgate_directory_errors_total",
                                     {"server": url, "kind": "unreachable"}) == before + 1
    assert REGISTRY.get_sample_value("authgate_directory_up", {"server": url}) == 0
    directory_bound(url, 0.0)
    assert REGISTRY.get_sample_value("authgate_directory_bind_duration_seconds_count",
                                     {"server": url}) == 1


def test_audit_append_latency_is_sampled(services) -> None:  # type: ignore[no-untyped-def]
    from prometheus_client import REGISTRY

    before = REGISTRY.get_sample_value("authgate_audit_append_duration_seconds_count") or 0
    for _ in range(APPEND_SAMPLE * 2):
        services.audit.record(AuditEvent(event="logout", outcome=Outcome.SUCCESS, reason="ok"))
    assert REGISTRY.get_sample_value("authgate_audit_append_duration_seconds_count") \
        - before == 2


def test_checkpoint_age_and_unsigned_records(client, services, clock: FixedClock) -> None:  # type: ignore[no-untyped-def]
    scrape = scrape_of(client)
    for _ in range(3):
        client.get("/verify", headers=verify_headers("/"))
    services.audit.checkpoint()
    clock.advance(seconds=42)
    client.get("/verify", headers=verify_headers("/"))
    samples = scrape()
    assert value(samples, "authgate_audit_checkpoint_age_seconds") == 42
    assert value(samples, "authgate_audit_unsigned_records") == 1


def test_policy_digest_approval_time_and_build_info(client, services) -> None:  # type: ignore[no-untyped-def]
    samples = scrape_of(client)()
    assert value(samples, "authgate_policy_info",
                 digest=services.policies.current.digest) == 1
    assert value(samples, "authgate_policy_approved_timestamp_seconds") >= 0
    assert value(samples, "authgate_build_info", version=__version__,
                 python=platform.python_version()) == 1


def test_policy_approval_time_is_the_reviewers(tmp_path: Path, users_file: Path) -> None:
    import shutil
    from datetime import UTC, datetime

    from authgate.composition.root import build_services
    from authgate.policy.files.approval import approve
    from authgate.storage.engine import migrate
    from authgate.web import create_app
    from tests.conftest import TEST_POLICIES

    policies = tmp_path / "approved"
    shutil.copytree(TEST_POLICIES, policies)
    approval = approve(policies, reviewer="rita", note="metrics test", now=datetime.now(UTC))
    settings = make_settings(tmp_path, users_file, policy={"path": str(policies),
                                                           "require_approval": True})
    migrate(settings.storage.url)
    app = create_app({"services": build_services(settings), "TESTING": True})
    samples = scrape_of(app.test_client())()
    assert value(samples, "authgate_policy_approved_timestamp_seconds") == \
        pytest.approx(approval.approved_at.timestamp(), abs=1)


def test_metrics_only_for_configured_networks_never_through_a_proxy(tmp_path: Path,
                                                                    users_file: Path) -> None:
    from authgate.composition.root import build_services
    from authgate.storage.engine import migrate
    from authgate.web import create_app, create_verify_app

    settings = make_settings(tmp_path, users_file, server={
        "public_url": "https://localhost:9091", "protected_domains": ["localhost"],
        "metrics_networks": ["10.9.0.0/16"]})
    migrate(settings.storage.url)
    services = build_services(settings)
    for factory in (create_app, create_verify_app):
        client = factory({"services": services, "TESTING": True}).test_client()
        unknown = client.get("/no-such-page", environ_base={"REMOTE_ADDR": "10.1.2.3"})
        refused = client.get("/metrics", environ_base={"REMOTE_ADDR": "10.1.2.3"})
        assert refused.status_code == 404 and refused.data == unknown.data  # nothing leaks
        assert client.get("/metrics").status_code == 404  # loopback is not configured here
        allowed = client.get("/metrics", environ_base={"REMOTE_ADDR": "10.9.8.7"})
        assert allowed.status_code == 200 and b"authgate_build_info" in allowed.data
        proxied = client.get("/metrics", environ_base={"REMOTE_ADDR": "10.9.8.7"},
                             headers={"X-Forwarded-For": "203.0.113.5"})
        assert proxied.status_code == 404


def test_metrics_networks_must_be_cidrs(tmp_path: Path, users_file: Path) -> None:
    from authgate.core.errors import ConfigError

    with pytest.raises(ConfigError, match=r"server.metrics_networks\[0\]"):
        make_settings(tmp_path, users_file, server={"metrics_networks": ["everyone"]})
