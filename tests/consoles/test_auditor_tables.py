"""Audit tables for people (issue 17 item 10): labels with the code on hover, an event
select, static noise hidden behind a visible toggle (never from the trail or exports), and
policy sources relative to the policy directory."""
from __future__ import annotations

import re

import pytest

from authgate.audit.catalog import EVENTS, REASONS
from authgate.core.values import Level, Outcome
from authgate.web.labels import (
    _EVENTS,
    event_label,
    filter_events,
    reason_label,
    relative_to_policy,
)
from tests.audit.conftest import event
from tests.conftest import TEST_POLICIES, session_cookie


@pytest.fixture
def auditor(client, services):  # type: ignore[no-untyped-def]
    session_cookie(client, services, "audrey", Level.MFA)
    return client


def test_every_catalogued_event_and_reason_has_a_label() -> None:
    assert set(EVENTS) <= set(_EVENTS), sorted(set(EVENTS) - set(_EVENTS))
    for code, meaning in REASONS.items():
        label = reason_label(code)
        assert label and label[0].isupper() and meaning.lower().startswith(label.lower()), code
    assert event_label("admin.user_renamed") == "Administrator action: user_renamed".replace(
        "_", " ")
    assert reason_label("not_in_catalogue") == "Not in catalogue"


def test_the_event_filter_lists_every_concrete_event() -> None:
    codes = [code for code, _ in filter_events()]
    assert {e for e in EVENTS if not e.endswith(".*")} <= set(codes)
    assert {"admin.factors_reset", "ban.user", "ban.spray"} <= set(codes)
    assert not any(code.endswith("*") for code in codes)


def test_search_shows_labels_with_codes_on_hover_and_a_select(auditor, services) -> None:  # type: ignore[no-untyped-def]
    services.audit.record(event(0, username="tomas", event="login.password",
                                outcome=Outcome.FAILURE, reason="invalid_credentials"))
    html = auditor.get("/audit/?user=tomas&event=login.password").get_data(as_text=True)
    assert ('<span class="code" title="login.password" data-code="login.password">Password'
            '</span>') in html
    assert 'title="invalid_credentials" data-code="invalid_credentials">Wrong username' in html
    assert '<select id="event" name="event">' in html
    assert '<option value="login.password" selected>Password</option>' in html
    assert "<time datetime=" in html


def test_static_noise_is_hidden_with_a_visible_toggle_but_exported(auditor, services) -> None:  # type: ignore[no-untyped-def]
    for n, path in enumerate(("/favicon.ico", "/robots.txt", "/report", "/favicon.ico?v=2")):
        services.audit.record(event(n, username="tomas", path=path))
    html = auditor.get("/audit/?user=tomas").get_data(as_text=True)
    table = re.search(r'<table id="audit-results">.*?</table>', html, flags=re.S).group(0)
    assert "/report" in table and "favicon" not in table and "robots" not in table
    assert "3 automatic browser requests" in html and 'id="show-all"' in html
    everything = auditor.get("/audit/?user=tomas&all=1").get_data(as_text=True)
    assert everything.count("/favicon.ico") >= 2 and "/robots.txt" in everything
    assert "all=1" not in re.search(r'id="download-csv" href="([^"]+)"', everything).group(1)
    export = auditor.get("/audit/export.csv?user=tomas").get_data(as_text=True)
    assert export.count("/favicon.ico") == 2 and "/robots.txt" in export


def test_only_noise_never_reads_as_no_records(auditor, services) -> None:  # type: ignore[no-untyped-def]
    services.audit.record(event(0, username="tomas", path="/favicon.ico"))
    html = auditor.get("/audit/?user=tomas").get_data(as_text=True)
    assert "No records match." not in html and "Only automatic browser requests" in html


def test_policy_sources_are_relative_to_the_policy_directory(client, services) -> None:  # type: ignore[no-untyped-def]
    session_cookie(client, services, "adam", Level.PHISHING_RESISTANT)
    html = client.get("/admin/policy").get_data(as_text=True)
    assert str(TEST_POLICIES) not in html
    assert re.search(r'<td class="mono">\d\d-[\w-]+\.yaml:\d+</td>', html), html[-3000:]
    assert relative_to_policy("/srv/p/10-apps.yaml:3 x: bad", "/srv/p/") == "10-apps.yaml:3 x: bad"


def test_staff_and_admin_pages_show_local_time_with_utc_on_hover(client, services) -> None:  # type: ignore[no-untyped-def]
    session_cookie(client, services, "alice", Level.MFA)
    home = client.get("/").get_data(as_text=True)
    assert re.search(r'<time datetime="[\d-]+T[\d:]+Z" title="[\d-]+ [\d:]+ UTC">'
                     r'[\d-]+ [\d:]+ E[SD]T</time>', home), home
    account = client.get("/account").get_data(as_text=True)
    assert "(UTC)" not in account and "<time datetime=" in account
