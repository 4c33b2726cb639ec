"""``GET /metrics``: Prometheus text format, served by the forward-auth pool only.

nginx sends that pool nothing but its ``auth_request`` subrequests
(``deploy/nginx/authgate.conf.template``), so the metrics are reachable from the host and
the scraper's network, never from the public portal. The SIEM sinks' lag gauges
(``authgate_audit_sink_lag_records``, ``..._lag_seconds``) are read from the database at
each scrape: whichever gunicorn worker answers, the figures are the same.
"""
from __future__ import annotations

import logging

from flask import Blueprint, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from werkzeug.wrappers import Response as BaseResponse

from authgate.core.errors import AuthgateError
from authgate.web.context import services

bp = Blueprint("metrics", __name__)
_log = logging.getLogger("authgate.metrics")


@bp.get("/metrics")
def metrics() -> BaseResponse:
    try:
        services().audit.sinks.lags()
    except AuthgateError as exc:  # the gauges keep their last values; readyz says why
        _log.warning("sink lag not refreshed: %s", exc.reason)
    return Response(generate_latest(), mimetype=CONTENT_TYPE_LATEST)
