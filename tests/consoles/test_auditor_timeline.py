"""The auditor's timeline round-trips its own form, in the policy's time zone (issue 17
items 1 and 9): an inclusive end date shown and read back the same way, local days, UTC on
hover; "nothing recorded" only when nothing is."""
from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from authgate.core.values import Level, Outcome
from authgate.web.auditor_views import period_of
from authgate.web.timefmt import as_utc, day_end, day_start, local_day, parse_day, time_tag
from tests.audit.conftest import event
from tests.conftest import session_cookie

TORONTO = ZoneInfo("America/Toronto")  # tests/policies/00-globals.yaml defaults.tz


def form_value(page: str, name: str) -> str:
    found = re.search(rf'id="{name}" name="{name}" value="([^"]*)"', page)
    assert found, page
    return found.group(1)


def times(page: str) -> list[str]:
    return re.findall(r'<time datetime="([^"]+)"', page)


# -- the date round trip, as pure functions -------------------------------------------------
def test_a_local_day_is_midnight_to_midnight_in_utc() -> None:
    assert day_start(date(2026, 12, 7), zone=TORONTO) == datetime(2026, 12, 7, 5, tzinfo=UTC)
    assert day_end(date(2026, 12, 7), zone=TORONTO) == datetime(2026, 12, 8, 5, tzinfo=UTC)


@pytest.mark.parametrize("day,hours", [(date(2026, 3, 8), 23), (date(2026, 11, 1), 25),
                                       (date(2026, 7, 1), 24)])
def test_daylight_saving_days_keep_their_true_length(day: date, hours: int) -> None:
    assert day_end(day, zone=TORONTO) - day_start(day, zone=TORONTO) == timedelta(hours=hours)


def test_end_of_day_belongs_to_that_day_and_midnight_to_the_next() -> None:
    last_second = day_end(date(2026, 12, 7), zone=TORONTO) - timedelta(microseconds=1)
    assert local_day(last_second, zone=TORONTO) == date(2026, 12, 7)
    assert local_day(day_end(date(2026, 12, 7), zone=TORONTO), zone=TORONTO) == date(2026, 12, 8)
    # 03:30 UTC on the 7th is still the evening of the 6th in Toronto
    assert local_day(datetime(2026, 12, 7, 3, 30, tzinfo=UTC), zone=TORONTO) == date(2026, 12, 6)


def test_no_end_date_means_today_inclusive_and_the_week_before() -> None:
    period = period_of("", "", today=date(2026, 12, 7), zone=TORONTO)
    assert (period.first, period.last) == (date(2026, 12, 1), date(2026, 12, 7))
    again = period_of(period.first.isoformat(), period.last.isoformat(),
                      today=date(2026, 12, 7), zone=TORONTO)
    assert again == period  # the form shows exactly what it searched
    assert period.until == datetime(2026, 12, 8, 5, tzinfo=UTC)


def test_only_an_end_date_or_only_a_start_date() -> None:
    assert period_of("", "2026-11-10", today=date(2026, 12, 7), zone=TORONTO).first == \
        date(2026, 11, 4)
    assert period_of("2026-11-10", "", today=date(2026, 12, 7), zone=TORONTO).last == \
        date(2026, 12, 7)


@pytest.mark.parametrize("since,until", [("2026-12-07", "2026-12-06"), ("07/12/2026", ""),
                                         ("", "2026-13-01")])
def test_malformed_or_reversed_dates_are_refused(since: str, until: str) -> None:
    with pytest.raises(ValueError):
        period_of(since, until, today=date(2026, 12, 7), zone=TORONTO)


def test_parse_day_takes_what_a_date_input_submits() -> None:
    assert parse_day(" 2026-12-07 ") == date(2026, 12, 7) and parse_day("") is None


def test_time_tag_shows_local_time_with_utc_on_hover() -> None:
    tag = str(time_tag(datetime(2026, 12, 7, 3, 30, 15, tzinfo=UTC), zone=TORONTO))
    assert tag == ('<time datetime="2026-12-07T03:30:15Z" title="2026-12-07 03:30:15 UTC">'
                   '2026-12-06 22:30 EST</time>')
    summer = str(time_tag(datetime(2026, 7, 1, 12, tzinfo=UTC), zone=TORONTO, style="time"))
    assert ">08:00:00 EDT<" in summer
    assert str(time_tag(None, zone=TORONTO)) == ""
    assert as_utc(datetime(2026, 1, 1)) == datetime(2026, 1, 1, tzinfo=UTC)  # naive = UTC


# -- through the page -----------------------------------------------------------------------
NOW = datetime(2026, 12, 7, 16, tzinfo=UTC)


@pytest.fixture
def auditor(client, services, clock):  # type: ignore[no-untyped-def]
    """Audrey signed in at ``NOW``; tests record at other instants and come back to it."""
    clock.set(NOW)
    session_cookie(client, services, "audrey", Level.MFA)
    return client


@pytest.mark.parametrize("now", [
    datetime(2026, 12, 7, 3, 30, tzinfo=UTC),    # evening in Toronto, the UTC day ahead
    datetime(2026, 12, 7, 16, 0, tzinfo=UTC),    # the afternoon: both calendars agree
    datetime(2026, 12, 8, 4, 59, 59, tzinfo=UTC),  # the last second of the local day
])
def test_resubmitting_the_prefilled_timeline_finds_todays_records(
        client, services, clock, now: datetime) -> None:  # type: ignore[no-untyped-def]
    clock.set(now)
    for n in range(3):
        services.audit.record(event(n, username="tomas", event="login.password",
                                    outcome=Outcome.SUCCESS, reason="password_ok"))
    session_cookie(client, services, "audrey", Level.MFA)
    first = client.get("/audit/timeline?user=tomas").get_data(as_text=True)
    today = local_day(now, zone=TORONTO).isoformat()
    assert form_value(first, "until") == today
    assert f"<h3>{today}</h3>" in first and "Nothing recorded" not in first
    since, until = form_value(first, "since"), form_value(first, "until")
    second = client.get(f"/audit/timeline?user=tomas&since={since}&until={until}")
    page = second.get_data(as_text=True)
    assert second.status_code == 200 and "Nothing recorded" not in page
    assert form_value(page, "since") == since and form_value(page, "until") == until
    assert page.count('class="outcome-success"') == first.count('class="outcome-success"') == 3


def test_the_end_date_includes_its_last_second_and_not_the_next_day(
        auditor, services, clock) -> None:  # type: ignore[no-untyped-def]
    end = day_end(date(2026, 12, 5), zone=TORONTO)
    for when, name in ((end - timedelta(seconds=1), "inside"), (end, "outside")):
        clock.set(when)
        services.audit.record(event(0, username="tomas", path=f"/{name}"))
    clock.set(NOW)
    page = auditor.get("/audit/timeline?user=tomas&since=2026-12-05&until=2026-12-05")
    html = page.get_data(as_text=True)
    assert "/inside" in html and "/outside" not in html
    assert times(html) == [(end - timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ")]
    assert ">23:59:59 EST</time>" in html


def test_nothing_recorded_only_when_nothing_is(auditor, services) -> None:  # type: ignore[no-untyped-def]
    html = auditor.get("/audit/timeline?user=tomas").get_data(as_text=True)
    assert 'id="nothing-recorded"' in html
    services.audit.record(event(0, username="tomas", path="/favicon.ico"))
    html = auditor.get("/audit/timeline?user=tomas").get_data(as_text=True)
    assert 'id="nothing-recorded"' not in html and 'id="only-noise"' in html
    shown = auditor.get("/audit/timeline?user=tomas&all=1").get_data(as_text=True)
    assert "/favicon.ico" in shown and 'name="all" value="1"' in shown


def test_reversed_dates_keep_the_form_and_say_why(auditor) -> None:  # type: ignore[no-untyped-def]
    r = auditor.get("/audit/timeline?user=tomas&since=2026-12-07&until=2026-12-01")
    html = r.get_data(as_text=True)
    assert r.status_code == 400 and 'role="alert"' in html
    assert form_value(html, "since") == "2026-12-07" and 'aria-invalid="true"' in html


def test_search_dates_are_local_days_and_exports_stay_utc(auditor, services, clock) -> None:  # type: ignore[no-untyped-def]
    clock.set(datetime(2026, 12, 7, 3, 30, tzinfo=UTC))  # 22:30 on the 6th in Toronto
    services.audit.record(event(0, username="tomas"))
    clock.set(NOW)
    html = auditor.get("/audit/?since=2026-12-06&until=2026-12-06").get_data(as_text=True)
    assert 'datetime="2026-12-07T03:30:00Z"' in html and "2026-12-06 22:30 EST" in html
    assert "From (date, America/Toronto)" in html
    assert "No records match." in auditor.get("/audit/?since=2026-12-07").get_data(as_text=True)
    export = auditor.get("/audit/export.jsonl?since=2026-12-06&until=2026-12-06")
    lines = export.get_data(as_text=True).splitlines()
    assert '"time":"2026-12-07T03:30:00.000000Z"' in lines[0]  # records stay UTC
    assert '"since":"2026-12-06T05:00:00+00:00"' in lines[-1]  # the filter too
