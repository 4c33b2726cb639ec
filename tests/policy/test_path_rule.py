"""Issue #14 finding 2: the path the policy judges is the path every back end serves, or the
request is refused (``ambiguous_path``) before any rule.

The property test generates paths from the characters that matter (delimiters, dots, escapes
of them, overlong UTF-8) and checks the engine against a model of what Tomcat 10 (measured:
tests/integration/test_bypass.py runs the same paths through the real one) and a WSGI app
behind nginx serve: when the engine accepts a path, both models serve exactly the judged
path, decoded once.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote, unquote_to_bytes

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from authgate.core.values import Resource
from authgate.policy import Subject, Verdict, decide, normalize_path
from authgate.policy.files import load_policy_set
from authgate.policy.paths import path_problem

NOW = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)
POLICIES = Path(__file__).resolve().parents[2] / "tests" / "policies"


@pytest.fixture(scope="module")
def ps():  # type: ignore[no-untyped-def]
    return load_policy_set(POLICIES)


def _decide(ps, path: str):  # type: ignore[no-untyped-def]
    return decide(ps, subject=Subject(), now=NOW,
                  resource=Resource("https", "localhost", path, "GET"))


# Each of these was (or could be) judged as one path and served as another by some back end.
REFUSED = [
    "/admin;x/", "/admin;jsessionid=ABC/", "/public;/../admin/", "/public/..;/forbidden/",
    "/public/%2e%2e;/forbidden/", "/public/%2E%2E%3B/forbidden/", "/public/.%2e;/x",
    "/admin%3bx/", "/admin%3B/", "/public/..%2fforbidden", "/public/%2e%2e/forbidden",
    "/public/../forbidden", "/public/./x", "/public/.", "/public/..", "//admin/",
    "/public//admin", "/public\\..\\forbidden", "/public/%5c..%5cforbidden",
    "/public/..%c0%afforbidden", "/public/%c0%ae%c0%ae/forbidden", "/public/%e0%80%af",
    "/public/%ff", "/public/%252e%252e/forbidden", "/public/%25", "/public/x%00.html",
    "/public/x%0a", "/public/%zz", "/public/x%", "/public/a b", "/public/caf\u00e9",
    "/public/\x00", "public/x", "",
]


@pytest.mark.parametrize("path", REFUSED)
def test_paths_a_back_end_could_serve_differently_are_refused_before_any_rule(ps, path: str
                                                                              ) -> None:
    decision = _decide(ps, path)
    assert (decision.verdict, decision.reason, decision.rule_id) == \
        (Verdict.DENY, "ambiguous_path", None)
    assert path_problem(path) is not None


ACCEPTED = ["/", "/public/", "/admin/", "/ADMIN/x", "/%61dmin/", "/a%20b", "/caf%C3%A9",
            "/a.b/..c/.d", "/x/whoami.json", "/a-b_c~d/!$&'()*+,=:@", "/public/%3F%23"]


@pytest.mark.parametrize("path", ACCEPTED)
def test_canonical_paths_are_judged(ps, path: str) -> None:
    assert path_problem(path) is None
    assert _decide(ps, path).reason != "ambiguous_path"


def test_a_path_parameter_no_longer_hides_an_admin_path(ps) -> None:
    """The pen-test case: a user at mfa reached /admin/ (phishing_resistant) via /admin;x/."""
    assert _decide(ps, "/admin/").reason == "login_required"
    assert _decide(ps, "/admin;x/").reason == "ambiguous_path"
    assert _decide(ps, "/forbidden;x/").reason == "ambiguous_path"


# -- a model of what the back ends serve -------------------------------------------------
def tomcat_serves(raw: str) -> str | None:
    """Tomcat 10.1's request-URI handling (CoyoteAdapter.postParseRequest), as measured:
    strip ``;params`` from each segment, refuse bad escapes, encoded ``/``, ``\\`` and NUL,
    decode once as UTF-8 (refusing invalid bytes), merge ``//`` and resolve dot segments
    (refusing ``..`` above the root). None means a 400."""
    if "\\" in raw or not raw.startswith("/") or not raw.isascii():
        return None
    stripped = re.sub(r";[^/]*", "", raw)
    if re.search(r"%(?![0-9A-Fa-f]{2})|%(2f|5c|00)", stripped, re.IGNORECASE):
        return None
    try:
        decoded = unquote_to_bytes(stripped).decode("utf-8")
    except UnicodeDecodeError:
        return None
    out: list[str] = []
    segments = decoded.split("/")[1:]
    for segment in segments:
        if segment == "..":
            if not out:
                return None
            out.pop()
        elif segment not in ("", "."):
            out.append(segment)
    trailing = "/" if segments[-1] in ("", ".", "..") and out else ""
    return "/" + "/".join(out) + trailing


def wsgi_serves(raw: str) -> str:
    """A WSGI app behind nginx (proxy_pass without a URI passes the request target as sent;
    gunicorn decodes it once into PATH_INFO and normalises nothing; the framework reads the
    bytes as UTF-8)."""
    return unquote(raw, errors="strict")


SEGMENT_PARTS = st.sampled_from([
    "a", "admin", "public", "B", ".", "..", "", ";", ";x", ";jsessionid=1", "%2e", "%2E",
    "%2e%2e", "%3b", "%3B", "%2f", "%5c", "\\", "%00", "%25", "%252e", "%c0%af", "%c0%ae",
    "%e0%80%af", "%ff", "%C3%A9", "%20", "%41", "%zz", "%", "~", "-", "@", ":", " ", "é",
])
PATHS = st.lists(st.lists(SEGMENT_PARTS, max_size=3).map("".join), min_size=1, max_size=5
                 ).map(lambda segments: "/" + "/".join(segments))


@settings(max_examples=600, deadline=None)
@given(PATHS)
@example("/admin;x/")
@example("/public/%2e%2e;/admin")
@example("/public/..%c0%afadmin")
def test_accepted_paths_are_served_exactly_as_judged(raw: str) -> None:
    """The invariant of finding 2: refused, or every back end serves the judged path."""
    if path_problem(raw) is not None:
        return
    judged = unquote(normalize_path(raw))
    assert tomcat_serves(raw) == judged, raw
    assert wsgi_serves(raw) == judged, raw


def test_the_tomcat_model_reproduces_the_pen_test_bypasses() -> None:
    """Sanity of the model itself (the integration suite checks it against real Tomcat)."""
    assert tomcat_serves("/admin;x/") == "/admin/"
    assert tomcat_serves("/public/..;/admin/") == "/admin/"
    assert tomcat_serves("/a//b/./c") == "/a/b/c"
    assert tomcat_serves("/x%c0%af") is None and tomcat_serves("/a%2fb") is None
