"""One place maps errors to a status and a generic page; nothing leaks a stack trace.

It also serves the refusal page (issue 17 item 3): ``/authgate/forbidden``, which nginx's
``error_page 403`` shows in place of its own bare 403 for every protected app (and the
demo's proxy likewise), and which the portal's own 403s use too.
"""
from __future__ import annotations

import logging
from urllib.parse import urlsplit

from flask import Blueprint, Flask, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response as BaseResponse

from authgate.core.errors import AuthgateError, DirectoryUnavailable, StorageError
from authgate.core.values import AuditEvent, Outcome
from authgate.web.context import meta, record_sampled, request_id, services
from authgate.web.cookies import session_token

_log = logging.getLogger("authgate.web")
bp = Blueprint("refusal", __name__)

_MESSAGES = {
    400: ("Bad request", "The request could not be understood. Please go back and try again."),
    404: ("Not found", "There is no such page."),
    405: ("Not allowed", "This action is not available here."),
    413: ("Too large", "What was sent is too large."),
    431: ("Too large", "The request headers are too large."),
}


#: refusals audited here; their views record nothing themselves. 403 is audited where it is
#: decided (the console guard), 404 is not a refusal, /verify audits its own answers.
_AUDITED = frozenset({400, 405, 413, 414, 431})


def _audit_refusal(status: int, reason: str) -> None:
    """Every refused request leaves a record (pen test of #14: CSRF failures and malformed
    bodies were answered 4xx but never audited), up to a rate per address: past it they
    are counted and the next record says how many (``regulation.rate.RecordSampler``; one
    address could otherwise make the gateway write as fast as it answers). Never raises:
    the page must still go out."""
    try:
        record_sampled(AuditEvent.for_request(
            meta(), "request.refused", Outcome.DENY, reason, status=str(status),
            method=request.method, path=request.path[:256]))
    except Exception:  # noqa: BLE001 - the refusal stands even if the audit store is down
        _log.exception("could not audit a refused request")


def _page(status: int, title: str, message: str) -> tuple[str, int]:
    return render_template("message.html", title=title, message=message), status


@bp.get("/authgate/forbidden")
def forbidden() -> tuple[str, int]:
    """The page behind nginx's ``error_page 403`` (an internal location on every protected
    app's host, so links and assets point at the portal's public URL). No access decorator:
    it is the page for those the decorators and ``/verify`` refused; it changes nothing and
    audits nothing (the refusal was audited where it was decided)."""
    return forbidden_page(), 403


def forbidden_page() -> str:
    """Who is signed in, how to sign out or switch account, a way home and the request id
    for the service desk (Microsoft's refusal pages show the same; ASVS 7.4.1: a generic
    message with an id support can look up, never the reason)."""
    try:
        session = services().sessions.resolve(session_token())
    except AuthgateError:  # the page still goes out, without the account
        session = None
    public = urlsplit(services().settings.server.public_url)
    return render_template("forbidden.html", session=session, request_id=request_id(),
                           portal=f"{public.scheme}://{public.netloc}")


def init_app(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def csrf_error(_exc: CSRFError) -> tuple[str, int]:
        _audit_refusal(400, "csrf_failed")
        return _page(400, "Form expired",
                     "This form was open too long or came from elsewhere. Please try again.")

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> tuple[str, int] | BaseResponse:
        status = exc.code or 500
        if status in _AUDITED:
            _audit_refusal(status, f"http_{status}")
        if status == 403:
            return forbidden_page(), 403
        title, message = _MESSAGES.get(status, ("Error", "Something went wrong."))
        return _page(status, title, message)

    @app.errorhandler(DirectoryUnavailable)
    @app.errorhandler(StorageError)
    def unavailable(exc: AuthgateError) -> tuple[str, int]:
        _log.error("service unavailable: %s", exc.reason)
        return _page(503, "Temporarily unavailable",
                     "Sign-in is unavailable right now. Please try again in a few minutes; "
                     "if it persists, contact the IT service desk.")

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> tuple[str, int]:
        _log.exception("unhandled error")
        return _page(500, "Something went wrong",
                     "The request failed. Please try again; if it persists, contact the IT "
                     "service desk.")
