"""Per-request helpers shared by the blueprints: services, request id, client address,
who is asking (for audit records) and the validated return URL."""
from __future__ import annotations

import re
import secrets
from dataclasses import replace
from urllib.parse import urlsplit

from flask import current_app, g, request

from authgate.access.proxy_headers import IPAddress, client_ip, parse_ip
from authgate.access.return_url import validate_return_url
from authgate.composition.root import Services
from authgate.core.errors import RedirectRefused
from authgate.core.metrics import RATE_LIMITED
from authgate.core.values import AuditEvent, Outcome, RequestMeta

REQUEST_ID_PATTERN = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
#: the forward-auth endpoint, answered in front of Flask (web/verify.py)
VERIFY_PATH = "/verify"


def services() -> Services:
    """The app's services (looked up once per request: Flask's proxies cost on the hot path)."""
    try:
        return g.authgate_services  # type: ignore[no-any-return]
    except AttributeError:
        g.authgate_services = current_app.extensions["authgate"]
        return g.authgate_services  # type: ignore[no-any-return]


def peer_trusted() -> bool:
    if "peer_trusted" not in g:
        g.peer_trusted = services().trusted_proxies.trusts(parse_ip(request.remote_addr))
    return g.peer_trusted  # type: ignore[no-any-return]


def request_id_from(given: str, *, peer_trusted: bool) -> str:
    """The proxy's ``X-Request-ID`` when a trusted proxy sent a sane one, else a new id."""
    return given if given and peer_trusted and REQUEST_ID_PATTERN.match(given) \
        else secrets.token_hex(8)


def request_id() -> str:
    if "request_id" not in g:
        g.request_id = request_id_from(request.headers.get("X-Request-ID", ""),
                                       peer_trusted=peer_trusted())
    return g.request_id  # type: ignore[no-any-return]


def remote_ip() -> IPAddress | None:
    if "remote_ip" not in g:
        g.remote_ip = client_ip(request.remote_addr, request.headers.get("X-Forwarded-For"),
                                services().trusted_proxies)
    return g.remote_ip  # type: ignore[no-any-return]


def remote_ip_text() -> str:
    ip = remote_ip()
    return str(ip) if ip is not None else ""


_ESCAPE = {c: f"\\x{c:02x}" for c in (*range(32), *range(127, 160))}  # C0, DEL, C1


def printable(value: str) -> str:
    """Control characters escaped (``\\x01``), so an audit record or log line shows them
    rather than carrying them to a terminal, syslog or SIEM."""
    return value.translate(_ESCAPE)


def user_agent() -> str:
    return printable(request.headers.get("User-Agent", "")[:512])


def meta() -> RequestMeta:
    """Who is asking, as the use cases take it for their audit records."""
    return RequestMeta(client_ip=remote_ip_text(), user_agent=user_agent(),
                       request_id=request_id(), method=request.method, path=request.path)


def record_sampled(event: AuditEvent) -> None:
    """Record a refusal that names no account (a refused request, an unsafe return URL, a
    console visit without a session) up to its address's rate: past it the refusal is
    counted, and the address's next such record carries ``unrecorded``, how many were left
    out (``regulation.rate.RecordSampler``: one address could otherwise make the gateway
    write a record for every request it sends, as fast as it answers)."""
    unrecorded = services().refusal_records.admit(event.client_ip)
    if unrecorded is None:
        RATE_LIMITED.labels("refusal_records").inc()
        return
    if unrecorded:
        event = replace(event, detail=(*event.detail, ("unrecorded", str(unrecorded))))
    services().audit.record(event)


def return_url(raw: str | None) -> str:
    """A validated return URL, or '' (and an audit record) when the given one is unsafe."""
    if not raw:
        return ""
    server = services().settings.server
    portal = server.public_url.rstrip("/")
    url = raw
    if raw.startswith("/") and not raw.startswith(("//", "/\\")):
        url = portal + raw  # a page of the portal itself
    allowed = (*server.protected_domains, urlsplit(portal).hostname or "")
    try:
        return validate_return_url(url, allowed_domains=allowed,
                                   allow_http_localhost=server.allow_http_localhost)
    except RedirectRefused as exc:  # the record keeps what was sent, not the joined URL
        record_sampled(AuditEvent.for_request(
            meta(), "redirect.refused", Outcome.DENY, exc.reason, why=str(exc),
            url=raw[:200]))
        return ""


def rd_param() -> str:
    """The request's validated ``rd`` (query string or form), as every login step reads it."""
    return return_url(request.values.get("rd"))
