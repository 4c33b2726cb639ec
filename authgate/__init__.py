"""authgate: an authentication hardening gateway (forward-auth) for a city's web apps."""
from __future__ import annotations

__version__ = "0.1.0"


def create_app(test_config: dict[str, object] | None = None):  # type: ignore[no-untyped-def]
    """Build the Flask app. Imported lazily so the pure layers never pull in Flask."""
    from authgate.web import create_app as _create_app

    return _create_app(test_config)
