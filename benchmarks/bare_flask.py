"""The baseline for ``benchmarks/verify.py``: the least a Flask forward-auth endpoint can do.

It checks one signed cookie (Flask's own itsdangerous session) and answers 200 with the user
it names, or 401. No storage, no policy, no audit: what authgate is compared against.
Run as ``gunicorn benchmarks.bare_flask:app`` with ``BARE_SECRET_KEY`` set.
"""
from __future__ import annotations

import os

from flask import Flask, Response, session

COOKIE_NAME = "bare_session"


def create_app(secret_key: str | None = None) -> Flask:
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=secret_key or os.environ["BARE_SECRET_KEY"],
        SESSION_COOKIE_NAME=COOKIE_NAME,
        SESSION_COOKIE_SECURE=True, SESSION_COOKIE_HTTPONLY=True,
        SESSION_REFRESH_EACH_REQUEST=False,  # no re-signing and Set-Cookie per request
    )

    @app.get("/verify")
    def verify() -> Response:
        user = session.get("user")
        if not isinstance(user, str) or not user:
            return Response("Authentication required\n", status=401, mimetype="text/plain")
        response = Response("OK\n", mimetype="text/plain")
        response.headers["Remote-User"] = user
        return response

    @app.get("/healthz")
    def healthz() -> Response:
        return Response("bare-ok\n", mimetype="text/plain")

    return app


def signed_cookie(secret_key: str, user: str) -> str:
    """The cookie value a login would have set (same serializer Flask uses to read it)."""
    app = create_app(secret_key)
    serializer = app.session_interface.get_signing_serializer(app)  # type: ignore[attr-defined]
    assert serializer is not None
    return str(serializer.dumps({"user": user}))


app = create_app() if "BARE_SECRET_KEY" in os.environ else None
