"""``/verify``: the forward-auth endpoint nginx ``auth_request``, Traefik and Caddy call.

Answers only 200, 401 or 403 (nginx turns anything else into a 500). 401 carries the full,
encoded login URL in ``Location`` (nginx keeps it with ``auth_request_set``).

Every request to every protected app passes here, so it is a plain WSGI handler in front
of the Flask app rather than a Flask view (issue 20 item 3): Flask's request and app
contexts, URL matching, ``Response`` objects and hooks cost about as much as the whole
decision. Nothing Flask did here is lost: the portal's hooks (signed-cookie session, CSRF,
page security headers, error pages) never applied to ``/verify``; the request is read from
the same WSGI environ with werkzeug's own cookie parser; the checks, the decision, the
audit record and the answers are the ones the view had, tested through the same app.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from time import perf_counter
from typing import Any
from urllib.parse import quote

from werkzeug.sansio.http import parse_cookie

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
from authgate.core.metrics import VERIFY_SECONDS
from authgate.core.values import AuditEvent, Outcome, RequestMeta, Resource, SessionRecord
from authgate.policy import Verdict
from authgate.web.context import VERIFY_PATH, printable, request_id_from
from authgate.web.cookies import cookie_name_for

_log = logging.getLogger("authgate.verify")
#: C0 controls except HTAB, and DEL: not allowed in a field value (RFC 9110 5.5)
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class ControlCharacterInHeader(UntrustedRequest):
    """A header /verify reads carries a control character: refused (403) and audited,
    never passed on, never a 500 (RFC 9110 5.5 forbids them in field values)."""

    reason = "control_character_in_header"


#: set by the proxy when it found a control character in a header it could not pass on
#: (gunicorn answers 400 to such a header, which nginx ``auth_request`` turns into a 500)
HEADER_PROBLEM = "X-Authgate-Header-Problem"


class RequestHeaders(Mapping[str, str]):
    """The request's headers as the WSGI server put them in the environ (``HTTP_*``, the
    same latin-1 strings werkzeug's ``EnvironHeaders`` hands out), read by name."""

    __slots__ = ("_environ",)

    def __init__(self, environ: Mapping[str, Any]) -> None:
        self._environ = environ

    def get(self, name: str, default: Any = None) -> Any:
        return self._environ.get(_key(name), default)

    def __getitem__(self, name: str) -> str:
        value = self._environ.get(_key(name))
        if value is None:
            raise KeyError(name)
        return str(value)

    def __iter__(self) -> Iterator[str]:
        return (k[5:].replace("_", "-").title() for k in self._environ if k.startswith("HTTP_"))

    def __len__(self) -> int:
        return sum(1 for k in self._environ if k.startswith("HTTP_"))


_KEYS: dict[str, str] = {}


def _key(name: str) -> str:
    key = _KEYS.get(name)
    if key is None:
        key = _KEYS[name] = "HTTP_" + name.upper().replace("-", "_")
    return key


def refuse_control_characters(headers: Mapping[str, str]) -> None:
    if headers.get(HEADER_PROBLEM):
        raise ControlCharacterInHeader(f"the proxy reported {HEADER_PROBLEM}")
    for name in ("User-Agent", "Cookie"):
        if _CONTROL.search(headers.get(name, "")):
            raise ControlCharacterInHeader(f"control character in {name}")


Answer = tuple[str, list[tuple[str, str]], bytes]


class VerifyEndpoint:
    """WSGI middleware: ``/verify`` is answered here, every other path goes to ``app``."""

    def __init__(self, app: WSGIApp, services: Services) -> None:
        self._app = app
        self._svc = services
        self._cookie = cookie_name_for(services.settings.session)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]
                 ) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != VERIFY_PATH:
            return self._app(environ, start_response)
        started = perf_counter()
        try:
            method = environ.get("REQUEST_METHOD", "")
            if method in ("GET", "HEAD"):
                status, headers, body = self.answer(environ)
            else:  # nginx, Traefik and Caddy ask with GET
                status, headers, body = self._refuse_method(environ, method)
            start_response(status, headers)
            return [b""] if method == "HEAD" else [body]
        finally:
            VERIFY_SECONDS.observe(perf_counter() - started)

    def answer(self, environ: dict[str, Any]) -> Answer:
        """The hot path of every protected request."""
        svc = self._svc
        headers = RequestHeaders(environ)
        peer = environ.get("REMOTE_ADDR")
        trusted = svc.trusted_proxies.trusts(parse_ip(peer))
        rid = request_id_from(headers.get("X-Request-ID", ""), peer_trusted=trusted)
        resource: Resource | None = None
        try:
            svc.policies.maybe_reload()  # a policy file that cannot be read: refused, audited
            resource = original_resource(headers, peer_trusted=trusted)
            refuse_control_characters(headers)
            require_protected_host(resource,
                                   protected_domains=svc.settings.server.protected_domains)
            token = parse_cookie(environ.get("HTTP_COOKIE", "")).get(self._cookie)
            result = svc.forward_auth.decide(AccessRequest(
                resource=resource, token=token,
                client_ip=client_ip(peer, headers.get("X-Forwarded-For"),
                                    svc.trusted_proxies),
                user_agent=headers.get("User-Agent", "")[:512], request_id=rid))
            if result.verdict is Verdict.ALLOW:
                return self._allow(result.session, resource, rid)
            if result.verdict is Verdict.AUTHENTICATE:
                return self._challenge(resource, nginx=bool(headers.get("X-Original-URI")))
            return _text("403 FORBIDDEN", "Forbidden by policy")
        except Exception as exc:  # noqa: BLE001 - the creed: an error never yields an allow
            # also after the decision (the identity token could not be signed, say): the
            # trail then holds the decision and this refusal, the proxy a 403, never a 500
            return self._refuse_on_error(exc, environ, headers, resource, rid)

    def _asking(self, environ: dict[str, Any], headers: RequestHeaders, rid: str
                ) -> RequestMeta:
        """Who is asking, for a refusal's record (the allow path never needs it)."""
        ip = client_ip(environ.get("REMOTE_ADDR"), headers.get("X-Forwarded-For"),
                       self._svc.trusted_proxies)
        return RequestMeta(client_ip=str(ip or ""), request_id=rid,
                           user_agent=printable(headers.get("User-Agent", "")[:512]))

    def _refuse_method(self, environ: dict[str, Any], method: str) -> Answer:
        """405, audited like every other refused request (``request.refused``, http_405)."""
        svc, headers = self._svc, RequestHeaders(environ)
        try:
            trusted = svc.trusted_proxies.trusts(parse_ip(environ.get("REMOTE_ADDR")))
            rid = request_id_from(headers.get("X-Request-ID", ""), peer_trusted=trusted)
            svc.audit.record(AuditEvent.for_request(
                self._asking(environ, headers, rid), "request.refused", Outcome.DENY,
                "http_405", status="405", method=method[:16], path=VERIFY_PATH))
        except Exception:  # noqa: BLE001 - the refusal stands even if the audit store is down
            _log.exception("could not audit a refused request")
        status, answer_headers, body = _text("405 METHOD NOT ALLOWED", "Method Not Allowed")
        answer_headers.append(("Allow", "GET, HEAD"))
        return status, answer_headers, body

    def _allow(self, session: SessionRecord | None, resource: Resource, rid: str) -> Answer:
        status, headers, body = _text("200 OK", "OK")
        if session is None:
            return status, headers, body
        headers += [("Remote-User", _header(session.username)),
                    ("Remote-Groups", _header(",".join(sorted(session.groups)))),
                    ("Remote-Name", _header(session.display_name)),
                    ("Remote-Email", _header(session.email))]
        signer = self._svc.identity_signer
        if signer is not None:
            headers.append(("Remote-Identity", signer.sign(
                subject=session.username, groups=session.groups, level=session.level.value,
                name=session.display_name, email=session.email, audience=resource.host,
                now=self._svc.clock.now(), token_id=rid)))
        return status, headers, body

    def _challenge(self, resource: Resource, *, nginx: bool) -> Answer:
        server = self._svc.settings.server
        login = server.public_url.rstrip("/") + "/login"
        try:
            target = validate_return_url(resource.url,
                                         allowed_domains=server.protected_domains,
                                         allow_http_localhost=server.allow_http_localhost)
            login += "?rd=" + quote(target, safe="")
        except RedirectRefused:
            pass  # log in anyway, then land on the portal
        # nginx wants 401 + Location (auth_request passes only 2xx/401/403); Traefik and
        # Caddy hand the auth answer to the browser as it is, so they get the redirect itself.
        status, headers, body = _text("401 UNAUTHORIZED" if nginx else "302 FOUND",
                                      "Authentication required")
        headers.append(("Location", login))
        return status, headers, body

    def _refuse_on_error(self, exc: Exception, environ: dict[str, Any],
                         headers: RequestHeaders, resource: Resource | None,
                         rid: str) -> Answer:
        svc = self._svc
        reason = exc.reason if isinstance(exc, AuthgateError) else "internal_error"
        if not isinstance(exc, UntrustedRequest):
            _log.error("verify failed closed: %s", type(exc).__name__, exc_info=exc)
        try:
            asking = self._asking(environ, headers, rid)
            svc.audit.record(error_event(
                reason=reason, request_id=rid, client_ip=asking.client_ip,
                user_agent=asking.user_agent, resource=resource,
                digest=svc.policies.current.digest,
                raw=(("sent_host", headers.get("X-Forwarded-Host", "")[:256]),
                     ("sent_method", headers.get("X-Original-Method", "")[:16]),
                     ("sent_uri", headers.get("X-Original-URI", "")[:512]))))
        except Exception:  # noqa: BLE001 - the audit store itself is down: still refuse
            _log.critical("audit write failed while refusing a /verify request", exc_info=True)
            unaudited_refusal()  # counted although unrecorded (docs/metrics.md)
        return _text("403 FORBIDDEN", "Request refused")


_DROP_CONTROL = {c: None for c in (*range(32), 127)}


def _header(value: str) -> str:
    """Header-safe: no control characters; UTF-8 bytes carried as latin-1 (as on the wire)."""
    cleaned = value.translate(_DROP_CONTROL)
    return cleaned if cleaned.isascii() else cleaned.encode("utf-8").decode("latin-1")


def _text(status: str, text: str) -> Answer:
    body = (text + "\n").encode()
    return status, [("Content-Type", "text/plain; charset=utf-8"),
                    ("Content-Length", str(len(body)))], body
