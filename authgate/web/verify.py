"""``/verify``: the forward-auth endpoint nginx ``auth_request``, Traefik and Caddy call.

Answers only 200, 401 or 403 (nginx turns anything else into a 500). 401 carries the full,
encoded login URL in ``Location`` (nginx keeps it with ``auth_request_set``).
"""
from __future__ import annotations

import logging
import re
from urllib.parse import quote

from flask import Blueprint, Response, current_app, g, request
from werkzeug.datastructures import Headers
from werkzeug.wrappers import Response as BaseResponse

from authgate.access.forward_auth import AccessRequest, error_event
from authgate.access.proxy_headers import (
    client_ip,
    original_resource,
    parse_ip,
    require_protected_host,
)
from authgate.access.return_url import validate_return_url
from authgate.audit.metrics import unaudited_refusal
from authgate.composition.root import Services
from authgate.core.errors import AuthgateError, RedirectRefused, UntrustedRequest
from authgate.core.values import Resource, SessionRecord
from authgate.policy import Verdict
from authgate.web.context import (
    VERIFY_PATH,
    remote_ip,
    request_id,
    request_id_from,
    services,
    user_agent,
)
from authgate.web.cookies import cookie_name_for

bp = Blueprint("verify", __name__)
_log = logging.getLogger("authgate.verify")
#: C0 controls except HTAB, and DEL: not allowed in a field value (RFC 9110 5.5)
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


class ControlCharacterInHeader(UntrustedRequest):
    """A header /verify reads carries a control character: refused (403) and audited,
    never passed on, never a 500 (RFC 9110 5.5 forbids them in field values)."""

    reason = "control_character_in_header"


#: set by the proxy when it found a control character in a header it could not pass on
#: (gunicorn answers 400 to such a header, which nginx ``auth_request`` turns into a 500)
HEADER_PROBLEM = "X-Authgate-Header-Problem"


def refuse_control_characters(headers: Headers) -> None:
    if headers.get(HEADER_PROBLEM):
        raise ControlCharacterInHeader(f"the proxy reported {HEADER_PROBLEM}")
    for name in ("User-Agent", "Cookie"):
        if _CONTROL.search(headers.get(name, "")):
            raise ControlCharacterInHeader(f"control character in {name}")


@bp.route(VERIFY_PATH, methods=["GET", "HEAD"])
def verify() -> BaseResponse:
    """The hot path of every protected request: Flask's context proxies are read once."""
    req = request._get_current_object()  # type: ignore[attr-defined]
    svc: Services = current_app.extensions["authgate"]
    headers = req.headers
    trusted = svc.trusted_proxies.trusts(parse_ip(req.remote_addr))
    rid = request_id_from(headers.get("X-Request-ID", ""), peer_trusted=trusted)
    g.request_id, g.peer_trusted = rid, trusted  # for the error path and the audit record
    resource: Resource | None = None
    try:
        svc.policies.maybe_reload()  # a policy file that cannot be read is refused, audited
        resource = original_resource(headers, peer_trusted=trusted)
        refuse_control_characters(headers)
        require_protected_host(resource,
                               protected_domains=svc.settings.server.protected_domains)
        result = svc.forward_auth.decide(AccessRequest(
            resource=resource, token=req.cookies.get(cookie_name_for(svc.settings.session)),
            client_ip=client_ip(req.remote_addr, headers.get("X-Forwarded-For"),
                                svc.trusted_proxies),
            user_agent=headers.get("User-Agent", "")[:512], request_id=rid))
    except Exception as exc:  # noqa: BLE001 - the creed: an error never yields an allow
        return _refuse_on_error(exc, resource)
    if result.verdict is Verdict.ALLOW:
        return _allow(svc, result.session, resource, rid)
    if result.verdict is Verdict.AUTHENTICATE:
        return _challenge(resource)
    return _text(403, "Forbidden by policy")


def _allow(svc: Services, session: SessionRecord | None, resource: Resource,
           rid: str) -> BaseResponse:
    if session is None:
        return _text(200, "OK")
    identity = [("Remote-User", _header(session.username)),
                ("Remote-Groups", _header(",".join(sorted(session.groups)))),
                ("Remote-Name", _header(session.display_name)),
                ("Remote-Email", _header(session.email))]
    if svc.identity_signer is not None:
        identity.append(("Remote-Identity", svc.identity_signer.sign(
            subject=session.username, groups=session.groups, level=session.level.value,
            name=session.display_name, email=session.email, audience=resource.host,
            now=svc.clock.now(), token_id=rid)))
    return Response("OK\n", status=200, mimetype="text/plain", headers=identity)


def _challenge(resource: Resource) -> BaseResponse:
    settings = services().settings
    login = settings.server.public_url.rstrip("/") + "/login"
    try:
        target = validate_return_url(resource.url,
                                     allowed_domains=settings.server.protected_domains,
                                     allow_http_localhost=settings.server.allow_http_localhost)
        login += "?rd=" + quote(target, safe="")
    except RedirectRefused:
        pass  # log in anyway, then land on the portal
    # nginx wants 401 + Location (auth_request passes only 2xx/401/403); Traefik and Caddy
    # hand the auth answer to the browser as it is, so they get the redirect itself.
    status = 401 if request.headers.get("X-Original-URI") else 302
    response = _text(status, "Authentication required")
    response.headers["Location"] = login
    return response


def _refuse_on_error(exc: Exception, resource: Resource | None) -> BaseResponse:
    svc = services()
    reason = exc.reason if isinstance(exc, AuthgateError) else "internal_error"
    if not isinstance(exc, UntrustedRequest):
        _log.error("verify failed closed: %s", type(exc).__name__, exc_info=exc)
    try:
        headers = request.headers
        svc.audit.record(error_event(
            reason=reason, request_id=request_id(), client_ip=str(remote_ip() or ""),
            user_agent=user_agent(), resource=resource, digest=svc.policies.current.digest,
            raw=(("sent_host", headers.get("X-Forwarded-Host", "")[:256]),
                 ("sent_method", headers.get("X-Original-Method", "")[:16]),
                 ("sent_uri", headers.get("X-Original-URI", "")[:512]))))
    except Exception:  # noqa: BLE001 - the audit store itself is down: still refuse
        _log.critical("audit write failed while refusing a /verify request", exc_info=True)
        unaudited_refusal()  # counted although unrecorded (docs/metrics.md)
    return _text(403, "Request refused")


_DROP_CONTROL = {c: None for c in (*range(32), 127)}


def _header(value: str) -> str:
    """Header-safe: no control characters; UTF-8 bytes carried as latin-1 (as on the wire)."""
    cleaned = value.translate(_DROP_CONTROL)
    return cleaned if cleaned.isascii() else cleaned.encode("utf-8").decode("latin-1")


def _text(status: int, body: str) -> BaseResponse:
    return Response(body + "\n", status=status, mimetype="text/plain")
