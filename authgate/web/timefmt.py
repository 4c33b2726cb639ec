"""Times as people read them: in the policy's default time zone, with UTC on hover.

Staff and auditors work on City Hall time (``defaults.tz`` in ``policies/00-globals.yaml``),
so every page shows that zone; the stored instant stays UTC, in the ``<time datetime>``
attribute (HTML "global date and time string", ISO 8601 with ``Z``), in the tooltip and in
every export. Dates typed into the auditor's forms are days of the same zone: a day is
``[local midnight, next local midnight)``, converted to UTC once, so a form shows back
exactly the days it was given (issue 17 items 1 and 9).
"""
from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from flask import Flask, current_app, has_app_context
from markupsafe import Markup, escape

from authgate.web.context import services

Style = Literal["datetime", "date", "time", "clock"]
UTC_ZONE = ZoneInfo("UTC")
_FORMATS: dict[str, str] = {"datetime": "%Y-%m-%d %H:%M %Z", "date": "%Y-%m-%d",
                            "time": "%H:%M:%S %Z", "clock": "%H:%M %Z"}


def display_zone() -> ZoneInfo:
    """The policy set's ``defaults.tz``; UTC when it names none (or outside a request)."""
    if not has_app_context() or "authgate" not in current_app.extensions:
        return UTC_ZONE
    name = services().policies.current.settings.defaults.tz
    return ZoneInfo(name) if name else UTC_ZONE


def as_utc(value: datetime) -> datetime:
    """An aware UTC datetime; a naive one is taken as UTC (how storage hands them out)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def time_tag(value: datetime | None, *, zone: ZoneInfo, style: Style = "datetime") -> Markup:
    """``<time datetime="...Z" title="... UTC">`` with the local reading as its text."""
    if value is None:
        return Markup("")
    utc = as_utc(value)
    shown = utc.astimezone(zone).strftime(_FORMATS[style])
    machine = utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    title = utc.strftime("%Y-%m-%d %H:%M:%S UTC")
    return Markup('<time datetime="{}" title="{}">{}</time>').format(
        machine, title, escape(shown))


def local_time(value: datetime | None, style: Style = "datetime") -> Markup:
    """The Jinja filter: ``{{ when|local_time }}`` or ``{{ when|local_time('date') }}``."""
    return time_tag(value, zone=display_zone(), style=style)


def zone_label() -> str:
    """The zone's name for headings and form labels ("America/Toronto")."""
    return display_zone().key


def parse_day(raw: str) -> date | None:
    """A typed ``YYYY-MM-DD`` (what ``<input type=date>`` submits); None when empty.
    Raises ValueError on anything else."""
    text = raw.strip()
    return datetime.strptime(text, "%Y-%m-%d").date() if text else None


def local_day(when: datetime, *, zone: ZoneInfo) -> date:
    """The day ``when`` falls on in ``zone``."""
    return as_utc(when).astimezone(zone).date()


def day_start(day: date, *, zone: ZoneInfo) -> datetime:
    """The UTC instant of ``day``'s local midnight (DST-safe: the zone decides the offset)."""
    return datetime.combine(day, time(), tzinfo=zone).astimezone(UTC)


def day_end(day: date, *, zone: ZoneInfo) -> datetime:
    """The exclusive end of ``day`` (the next local midnight): an inclusive "to" date."""
    return day_start(day + timedelta(days=1), zone=zone)


def init_app(app: Flask) -> None:
    app.jinja_env.filters["local_time"] = local_time
    app.jinja_env.globals["time_zone"] = zone_label
