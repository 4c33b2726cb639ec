"""The Flask layer: parse the request, call services, respond. Nothing else imports Flask."""
from __future__ import annotations

import gc
import logging
import signal
from datetime import timedelta
from typing import Any

from flask import Flask, current_app
from flask_wtf.csrf import CSRFProtect

from authgate.composition.regulation import seed_failure_floor
from authgate.composition.root import Services, build_services
from authgate.config import Settings, load_settings
from authgate.policy.live import PolicyRuntime
from authgate.web.verify import VerifyEndpoint

csrf = CSRFProtect()


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """App factory. ``test_config`` may carry ``settings`` (a Settings), ``services`` (a
    prebuilt Services) or ``config_path``; nothing connects at import time."""
    return _create(test_config, portal=True)


def create_verify_app(test_config: dict[str, Any] | None = None) -> Flask:
    """The forward-auth pool (``authgate serve --verify-bind``): ``/verify`` and the health
    and key endpoints only. Its workers never take a login, so attackers' login attempts
    (and their padded failures) cannot occupy them (issue 15 item 7)."""
    return _create(test_config, portal=False)


def _create(test_config: dict[str, Any] | None, *, portal: bool) -> Flask:
    test_config = dict(test_config or {})
    services = _services_for(test_config)
    _configure_logging(services.settings)
    app = Flask(__name__)
    app.config.update(_flask_config(services))
    app.config.update(test_config)
    app.extensions["authgate"] = services
    app.jinja_env.globals["passkey"] = services.settings.webauthn.passkey_sign_in
    csrf.init_app(app)
    app.before_request(_check_csrf)
    if not app.config.get("TESTING"):
        _reload_on_sighup(services.policies)
    _register_blueprints(app, portal=portal)
    # /verify is answered in front of Flask (web/verify.py); everything else is Flask's
    app.wsgi_app = VerifyEndpoint(app.wsgi_app, services)  # type: ignore[method-assign]
    if portal and not app.config.get("TESTING"):
        seed_failure_floor(services.regulator, services.directory)
    if not app.config.get("TESTING"):
        # Everything built so far lives as long as the worker: keep it out of the cyclic
        # collector's full passes, which otherwise walk it all every few thousand requests.
        gc.collect()
        gc.freeze()
    return app


def _services_for(test_config: dict[str, Any]) -> Services:
    """The prebuilt services a test hands in, else built once from the settings."""
    services: Services | None = test_config.pop("services", None)
    if services is not None:
        return services
    settings: Settings = test_config.pop("settings", None) or load_settings(
        test_config.pop("config_path", None))
    return build_services(settings)


def _flask_config(services: Services) -> dict[str, Any]:
    settings = services.settings
    return dict(
        SECRET_KEY=services.session_key,
        # after ``keys rotate session``: the new key signs, the earlier ones still verify
        # (the CSRF cookie and the forms already on screen; docs/deployment.md)
        SECRET_KEY_FALLBACKS=list(services.previous_session_keys),
        WTF_CSRF_SECRET_KEY=[*reversed(services.previous_session_keys),
                             services.session_key],  # itsdangerous: the last one signs
        # Flask's own signed cookie carries only the CSRF secret (ASVS 4.2.2). It is always
        # host-only (no SESSION_COOKIE_DOMAIN), Secure and Path=/, so it always takes the
        # ``__Host-`` prefix (RFC 6265bis 4.1.3.2): a sibling sub-domain cannot plant one.
        SESSION_COOKIE_NAME=f"__Host-csrf-{settings.session.cookie_name}",
        SESSION_COOKIE_PATH="/", SESSION_COOKIE_DOMAIN=None,
        SESSION_COOKIE_SECURE=True, SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax", SESSION_REFRESH_EACH_REQUEST=False,
        PERMANENT_SESSION_LIFETIME=timedelta(hours=12),
        MAX_CONTENT_LENGTH=settings.server.max_form_bytes,
        MAX_FORM_MEMORY_SIZE=settings.server.max_form_bytes,
        WTF_CSRF_TIME_LIMIT=3600, WTF_CSRF_SSL_STRICT=False,
        WTF_CSRF_CHECK_DEFAULT=False,  # _check_csrf runs Flask-WTF's check instead
        TEMPLATES_AUTO_RELOAD=False,
    )


def _register_blueprints(app: Flask, *, portal: bool) -> None:
    from authgate.web import (
        account,
        admin,
        auditor,
        auditor_views,
        enrol,
        errors,
        factor_login,
        labels,
        metrics,
        passkey,
        password_change,
        security,
        signin,
        wellknown,
    )

    security.init_app(app)
    labels.init_app(app)
    errors.init_app(app)
    pages = (signin, factor_login, enrol, account, password_change, passkey, admin, auditor,
             auditor_views, errors) if portal else ()
    metrics.init_app(app, networks=app.extensions["authgate"].settings.server.metrics_networks)
    for module in (wellknown, metrics, *pages):  # metrics: never public (metrics.py)
        app.register_blueprint(module.bp)
    csrf.exempt(wellknown.bp)
    csrf.exempt(metrics.bp)


def _check_csrf() -> None:
    """Flask-WTF's own check, on every request except where a blueprint is exempt."""
    if current_app.config["WTF_CSRF_ENABLED"]:
        csrf.protect(apply_exemptions=True)


def _reload_on_sighup(policies: PolicyRuntime) -> None:
    """SIGHUP to a worker re-reads the policy files on its next request (file edits are also
    noticed within a second). The handler only sets a flag: reloading inside it could
    deadlock on the runtime's lock when the signal lands mid-reload. A rejected set leaves
    the last approved one in force (audited)."""
    def handler(_signum: int, _frame: object) -> None:
        policies.request_reload()

    try:
        signal.signal(signal.SIGHUP, handler)
    except ValueError:  # not the main thread (e.g. a test server): file polling still works
        pass


def _configure_logging(settings: Settings) -> None:
    logging.getLogger("authgate").setLevel(settings.logging.level)
