"""Site-wide HTTP behaviour: a Content-Security-Policy, and a clear answer when the database is
away instead of a bare server error."""

from __future__ import annotations

import logging

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse

log = logging.getLogger(__name__)

# Scripts only from our own files (htmx and annotate.js are static files; nothing inline, no
# eval); styles may be inline (the base template's <style> and htmx's indicator style).
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)

TRY_AGAIN = (
    "<!doctype html><title>Please try again</title>"
    "<h1>Please try again in a few seconds</h1>"
    "<p>The database is not answering right now (it may be restarting). Your earlier answers "
    "are safe. Try again in a few seconds: answers sent again are stored once, never twice.</p>"
)


class SecurityHeadersMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.headers.setdefault("Referrer-Policy", "same-origin")
        return response


class DatabaseUnavailableMiddleware:
    """503 with Retry-After when the database connection fails. The request's transaction was
    rolled back, or (when the connection broke just as it committed) stored: either way the
    client can simply retry, since a repeated submission is stored once."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, (OperationalError, InterfaceError)):
            return None
        if "locked" in str(exception).lower() or _connection_lost(exception):
            log.warning("database unavailable for %s: %s", request.path, exception)
            response = HttpResponse(TRY_AGAIN, status=503)
            response["Retry-After"] = "5"
            return response
        return None


def _connection_lost(exception: Exception) -> bool:
    text = str(exception).lower()
    signs = ("connection", "server closed", "terminating", "could not connect", "shutting down")
    return isinstance(exception, InterfaceError) or any(s in text for s in signs)
