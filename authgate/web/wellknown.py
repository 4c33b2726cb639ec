"""Fixed, unauthenticated answers: ``/healthz`` (the process answers), ``/readyz`` (storage
and directory usable; each SIEM sink's lag), the identity-key PEM apps verify
``Remote-Identity`` with, and the favicon browsers ask for on their own."""
from __future__ import annotations

import logging

from flask import Blueprint, Response, abort, jsonify, redirect
from werkzeug.wrappers import Response as BaseResponse

from authgate.core.errors import AuthgateError
from authgate.web.context import services

bp = Blueprint("health", __name__)
_log = logging.getLogger("authgate.health")


@bp.get("/favicon.ico")
def favicon() -> BaseResponse:
    """Browsers ask for it on their own; answer without rendering a page (an error page
    would start a new CSRF secret and race the login form's)."""
    return redirect("/static/favicon.svg", code=301)


@bp.get("/healthz")
def healthz() -> BaseResponse:
    return Response("ok\n", mimetype="text/plain")


@bp.get("/.well-known/authgate/identity-key.pem")
def identity_key() -> BaseResponse:
    """The public key apps use to check ``Remote-Identity`` (404 when not configured)."""
    signer = services().identity_signer
    if signer is None:
        abort(404)
    return Response(signer.public_pem(), mimetype="application/x-pem-file")


@bp.get("/readyz")
def readyz() -> tuple[BaseResponse, int]:
    """503 with the precise reason. The directory probe reuses a pooled service connection
    and passes the service-bind circuit, so probing never spends a bad service password
    (issue 15); ``directory_detail`` says what AD answered and what to do. A failing
    audit witness shows as ``audit_witness: degraded`` and leaves the gateway ready."""
    svc = services()
    checks: dict[str, str] = {}
    for name, probe in (("storage", svc.sessions.ping), ("directory", svc.directory.check)):
        try:
            probe()
            checks[name] = "ok"
        except AuthgateError as exc:
            checks[name] = exc.reason
            if name == "directory":
                checks["directory_detail"] = str(exc)[:400]
        except Exception:  # noqa: BLE001 - a probe must never crash readiness
            _log.exception("readiness probe %s failed", name)
            checks[name] = "error"
    checks["policy"] = svc.policies.current.digest[:16]
    witness = svc.audit.witness
    if witness is not None:  # degraded, not down: logins go on, checkpoints are retried
        health = witness.health()
        checks["audit_witness"] = ("ok" if health.ok else
                                   f"degraded: {health.pending} checkpoints not witnessed: "
                                   f"{health.error}"[:300])
    ready = checks["storage"] == "ok" and checks["directory"] == "ok"
    sinks, degraded = _sink_lags()
    return jsonify(ready=ready, checks=checks, sinks=sinks, degraded=degraded), (
        200 if ready else 503)


def _sink_lags() -> tuple[dict[str, dict[str, object]], list[str]]:
    """Each SIEM sink's lag, and the sinks whose oldest undelivered record is older than
    ``audit.delivery.degraded_after``. A SIEM outage never makes the gateway unready:
    logins must go on while the records wait in the database (issue 16 item 7)."""
    audit = services().audit
    bound = audit.sinks.options.degraded_after.total_seconds()
    try:
        lags = audit.sinks.lags()
    except AuthgateError as exc:
        return {}, [f"sinks: {exc.reason}"]
    # keyed by position and kind: the SIEM's address is not for unauthenticated callers
    report: dict[str, dict[str, object]] = {
        f"{i}:{lag.sink.split(':')[0]}": {
            "last_id": lag.last_id, "behind": lag.behind,
            "lag_seconds": round(lag.seconds, 1),
            "state": "degraded" if lag.seconds > bound else "ok"}
        for i, lag in enumerate(lags)}
    return report, [name for name, row in report.items() if row["state"] != "ok"]
