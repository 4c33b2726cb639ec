"""Plain words for people: event names, reason codes and browser strings.

Staff pages and the audit console show these labels; the audit console keeps the code one
hover away (``title``) and in every export, so an expert and a newcomer read the same row.
Every event and reason in ``audit.catalog`` has a label (``tests/consoles/
test_auditor_labels.py`` checks it); reasons take the catalogue's own description.
"""
from __future__ import annotations

import re

from flask import Flask

from authgate.audit.catalog import EVENTS, REASONS
from authgate.web import timefmt
from authgate.web.context import services

_EVENTS = {
    "login.password": "Password", "login.totp": "Authenticator code",
    "login.webauthn": "Security key", "login.recovery": "Recovery code",
    "login.break_glass": "Break-glass sign-in", "factor.added": "Device added",
    "factor.removed": "Device removed", "admin.factors_reset": "Devices reset by IT",
    "factor.recovery_codes": "New recovery codes", "password.change": "Password change",
    "verify": "Access decision", "logout": "Signed out",
    "session.ended_by_user": "Sessions ended by the user",
    "redirect.refused": "Unsafe return address refused",
    "console.access": "Console visit refused or sent to sign in",
    "policy.reload": "Policy loaded or rejected", "login.passkey": "Passkey sign-in",
    "login.factor": "Second factor refused", "login.next": "Application refused after sign-in",
    "request.refused": "Request refused", "session.refresh": "Account re-read",
    "session.revoked": "Session ended by a directory change",
    "enrol.code_issued": "Enrolment code issued", "enrol.code_redeemed": "Enrolment code used",
    "enrol.code_revoked": "Enrolment code revoked",
    "enrol.totp.start": "Authenticator app set-up started",
    "enrol.totp.confirm": "Authenticator app set-up failed",
    "enrol.webauthn": "Security key registration failed",
    "enrol.refused": "Device refused by the enrolment rule",
    "factor.renamed": "Device renamed", "keys.rotate": "Keys rotated",
    "admin.*": "Administrator action", "admin.sessions_ended": "Sessions ended by IT",
    "admin.all_sessions_ended": "Every session ended by IT",
    "ban.*": "Ban", "ban.user": "Account banned", "ban.ip": "Address banned",
    "ban.factor": "Second factor banned", "ban.spray": "Password spraying banned",
    "ban.lift": "Ban lifted", "ban.list": "Bans listed",
    "audit.export": "Audit records downloaded", "audit.verify": "Audit trail verified",
    "audit.checkpoint": "Audit checkpoint signed", "audit.witness": "Audit witness",
    "audit.purge": "Old audit records purged", "audit.chain.close": "Audit chain closed",
    "directory.service_bind": "Directory service account", "login.completed": "Signed in",
    "audit.restore": "Database restored from a backup",
}
_OUTCOMES = {"success": "OK", "failure": "Failed", "deny": "Refused", "error": "Error",
             "info": "", "allow": "Allowed", "challenge": "Sign-in asked"}
_BROWSERS = (("Edg/", "Edge"), ("Firefox/", "Firefox"), ("Chrome/", "Chrome"),
             ("Safari/", "Safari"), ("curl/", "curl"))
_SYSTEMS = (("Windows", "Windows"), ("Android", "Android"), ("iPhone", "iPhone"),
            ("iPad", "iPad"), ("Mac OS X", "macOS"), ("CrOS", "ChromeOS"), ("Linux", "Linux"))


def event_label(name: str) -> str:
    """The event's label; a new event of a catalogued area (``admin.*``) gets the area's."""
    if name in _EVENTS:
        return _EVENTS[name]
    area = _EVENTS.get(name.split(".", 1)[0] + ".*")
    spoken = name.replace(".", " ").replace("_", " ")
    return f"{area}: {spoken.split(' ', 1)[-1]}" if area else spoken.capitalize()


def reason_label(code: str) -> str:
    """The catalogue's description of a reason code, its first clause, capitalised."""
    meaning = REASONS.get(code)
    if not meaning:
        return code.replace("_", " ").capitalize()
    first = re.split(r" \(|; ", meaning, maxsplit=1)[0]
    return first[:1].upper() + first[1:]


def filter_events() -> list[tuple[str, str]]:
    """(code, label) for the audit search's event filter: every concrete catalogued event
    and the known events of the ``area.*`` families, by label."""
    names = {n for n in EVENTS if not n.endswith(".*")}
    names |= {n for n in _EVENTS if not n.endswith(".*") and (n.split(".")[0] + ".*") in EVENTS}
    return sorted(((n, event_label(n)) for n in names), key=lambda pair: pair[1].lower())


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


def relative_to_policy(text: str, directory: str) -> str:
    """A loader message or rule source (``/srv/authgate/policies/10-apps.yaml:12``) with the
    policy directory taken off: pages never show the server's file layout."""
    prefix = directory.rstrip("/") + "/"
    return text.replace(prefix, "")


def policy_relative(text: str) -> str:
    """The Jinja filter: ``relative_to_policy`` with the policy directory in force."""
    return relative_to_policy(text, str(services().policies.directory))


def init_app(app: Flask) -> None:
    app.jinja_env.filters["event_label"] = event_label
    app.jinja_env.filters["outcome_label"] = outcome_label
    app.jinja_env.filters["device"] = device_label
    app.jinja_env.filters["reason_label"] = reason_label
    app.jinja_env.filters["policy_relative"] = policy_relative
    timefmt.init_app(app)
