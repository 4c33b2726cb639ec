"""``GET /metrics``: Prometheus text format for the scraper, and nobody else (#18).

Both pools serve it (the verify pool counts decisions, the portal pool sign-ins); each pool
sums its own workers (``authgate serve`` gives each master a private
``PROMETHEUS_MULTIPROC_DIR``). Only a peer inside ``server.metrics_networks`` (default:
loopback) that is not a proxy forwarding someone else's request gets an answer; anyone else
gets the same 404 as for a path that does not exist, so the endpoint's existence leaks
nothing. nginx sends the verify pool only its ``auth_request`` subrequests and refuses
``/metrics`` on the portal (``deploy/nginx/authgate.conf.template``).

Figures that live in the database or the policy directory (sink lag, active bans,
checkpoint age, policy digest and approval time) are read at each scrape: whichever worker
answers, they are the same. docs/metrics.md describes every family.
"""
from __future__ import annotations

import json
import logging
import os
import platform
from collections import Counter as Tally
from collections.abc import Callable, Iterable
from time import perf_counter
from typing import Any

from flask import Blueprint, Flask, Response, abort, current_app, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client import multiprocess as prometheus_multiprocess
from werkzeug.wrappers import Response as BaseResponse

from authgate import __version__
from authgate.access.proxy_headers import TrustedProxies, parse_ip
from authgate.composition.root import Services
from authgate.core.errors import AuthgateError
from authgate.core.metrics import (
    ACTIVE_BANS,
    BUILD_INFO,
    CHECKPOINT_AGE,
    LOGIN_STEP_SECONDS,
    POLICY_APPROVED,
    POLICY_INFO,
    UNSIGNED_RECORDS,
)
from authgate.policy.files.approval import latest_approval_for
from authgate.web.context import services

bp = Blueprint("metrics", __name__)
_log = logging.getLogger("authgate.metrics")
_NETWORKS = "authgate.metrics_networks"
#: a request that came through a proxy is never a scrape, whatever the proxy's address
_FORWARDED = ("X-Forwarded-For", "Forwarded", "X-Real-IP", "X-Original-URI")
#: POST path → step label of ``authgate_login_step_duration_seconds``
LOGIN_STEPS = {"/login": "password", "/login/totp": "totp", "/login/recovery": "recovery",
               "/login/webauthn/verify": "webauthn", "/login/passkey/verify": "passkey",
               "/password/change": "password_change"}
BAN_KINDS = ("user", "ip", "userip", "factor")
_reported_digests: set[str] = set()


def init_app(app: Flask, *, networks: Iterable[str]) -> None:
    """Time the sign-in steps around the whole Flask dispatch (``/verify`` times itself,
    web/verify.py), and remember which networks may scrape."""
    app.extensions[_NETWORKS] = TrustedProxies.parse(networks)
    app.wsgi_app = _Timed(app.wsgi_app)  # type: ignore[method-assign]
    BUILD_INFO.labels(__version__, platform.python_version()).set(1)


class _Timed:
    """WSGI middleware: one histogram observation per sign-in step; every other request
    passes untouched."""

    def __init__(self, app: Callable[..., Any]) -> None:
        self._app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        path = environ.get("PATH_INFO", "")
        step = LOGIN_STEPS.get(path) if environ.get("REQUEST_METHOD") == "POST" else None
        if step is None:
            return self._app(environ, start_response)
        started = perf_counter()
        try:
            return self._app(environ, start_response)
        finally:
            LOGIN_STEP_SECONDS.labels(step).observe(perf_counter() - started)


@bp.get("/metrics")
def metrics() -> BaseResponse:
    if not may_scrape():
        abort(404)  # the page any unknown path gets: nothing says a metrics page exists
    refresh(services())
    return Response(exposition(), mimetype=CONTENT_TYPE_LATEST)


def may_scrape() -> bool:
    """The socket peer is in ``server.metrics_networks`` and forwards no one else."""
    networks: TrustedProxies = current_app.extensions[_NETWORKS]
    if any(name in request.headers for name in _FORWARDED):
        return False
    return networks.trusts(parse_ip(request.remote_addr))


def exposition() -> bytes:
    """Every worker's values summed (multiprocess mode), else this process's."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        prometheus_multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    return generate_latest()


def refresh(svc: Services) -> None:
    """Read the scrape-time gauges; one that cannot be read keeps its last value (``/readyz``
    says why), the others are still refreshed."""
    for step in (_sink_lags, _bans, _checkpoint, _policy):
        try:
            step(svc)
        except AuthgateError as exc:
            _log.warning("metrics: %s not refreshed: %s", step.__name__, exc.reason)


def _sink_lags(svc: Services) -> None:
    svc.audit.sinks.lags()  # sets authgate_audit_sink_lag_* (audit/delivery.py)


def _bans(svc: Services) -> None:
    kinds = Tally(ban.subject.split(":", 1)[0] for ban in svc.regulator.active_bans())
    for kind in BAN_KINDS:
        ACTIVE_BANS.labels(kind).set(kinds.pop(kind, 0))
    ACTIVE_BANS.labels("other").set(sum(kinds.values()))


def _checkpoint(svc: Services) -> None:
    store = svc.audit.store
    last, newest = store.last_checkpoint(), store.max_id()
    if last is None:
        CHECKPOINT_AGE.set(-1)
        UNSIGNED_RECORDS.set(newest)
        return
    CHECKPOINT_AGE.set(max(0.0, svc.clock.now().timestamp() - last.ts / 1_000_000))
    signed = int(json.loads(last.payload).get("max_id", 0))
    # the checkpoint's own record (audit.checkpoint) follows the ids it signed
    UNSIGNED_RECORDS.set(max(0, newest - signed - 1))


def _policy(svc: Services) -> None:
    runtime = svc.policies
    digest = runtime.current.digest
    for earlier in _reported_digests - {digest}:
        POLICY_INFO.labels(earlier).set(0)
    _reported_digests.intersection_update({digest})
    _reported_digests.add(digest)
    POLICY_INFO.labels(digest).set(1)
    approval = latest_approval_for(runtime.directory, digest)
    POLICY_APPROVED.set(approval.approved_at.timestamp() if approval else 0)
