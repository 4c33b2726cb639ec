"""Plain words for staff pages: event names and browser strings people can read."""
from __future__ import annotations

import re

from flask import Flask

_EVENTS = {
    "login.password": "Password", "login.totp": "Authenticator code",
    "login.webauthn": "Security key", "login.recovery": "Recovery code",
    "login.break_glass": "Break-glass sign-in", "factor.added": "Device added",
    "factor.removed": "Device removed", "admin.factors_reset": "Devices reset by IT",
    "factor.recovery_codes": "New recovery codes", "password.change": "Password change",
}
_OUTCOMES = {"success": "OK", "failure": "Failed", "deny": "Refused", "error": "Error",
             "info": "", "allow": "Allowed", "challenge": "Sign-in asked"}
_BROWSERS = (("Edg/", "Edge"), ("Firefox/", "Firefox"), ("Chrome/", "Chrome"),
             ("Safari/", "Safari"), ("curl/", "curl"))
_SYSTEMS = (("Windows", "Windows"), ("Android", "Android"), ("iPhone", "iPhone"),
            ("iPad", "iPad"), ("Mac OS X", "macOS"), ("CrOS", "ChromeOS"), ("Linux", "Linux"))


def event_label(name: str) -> str:
    return _EVENTS.get(name, name.replace(".", " ").replace("_", " ").capitalize())


def outcome_label(value: str) -> str:
    return _OUTCOMES.get(value, value)


def device_label(user_agent: str) -> str:
    """"Chrome on Windows" from a User-Agent string; the raw string only as a last resort."""
    browser = next((name for marker, name in _BROWSERS if marker in user_agent), "")
    system = next((name for marker, name in _SYSTEMS if marker in user_agent), "")
    if "HeadlessChrome" in user_agent:
        browser = "Chrome (headless)"
    if browser or system:
        return f"{browser or 'Browser'} on {system}" if system else browser
    return re.sub(r"\s+", " ", user_agent)[:40] or "Unknown device"


def init_app(app: Flask) -> None:
    app.jinja_env.filters["event_label"] = event_label
    app.jinja_env.filters["outcome_label"] = outcome_label
    app.jinja_env.filters["device"] = device_label
