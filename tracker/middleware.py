from __future__ import annotations

import logging
import time
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from tracker.errors import busy_response, is_pool_exhausted

log = logging.getLogger("questboard.requests")
busy = logging.getLogger("questboard.database")


class RequestLogMiddleware:
    """Log every request: time, method, endpoint, status and duration."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        duration_ms = (time.perf_counter() - started) * 1000
        match = getattr(request, "resolver_match", None)
        endpoint = match.route if match else request.path
        log.info(
            "%s %s %s %d %.1fms",
            request.method,
            request.path,
            endpoint,
            response.status_code,
            duration_ms,
            extra={"endpoint": endpoint, "status": response.status_code, "duration_ms": duration_ms},
        )
        return response


class DatabaseBusyMiddleware:
    """Answer 503 with Retry-After, not 500, when the connection pool has none to lend.

    A middleware rather than the DRF exception handler alone, so pages and the admin answer
    the same as the API. The first query of a request is where a pooled process waits for a
    connection, and that happens in the view (DRF re-raises what its handler leaves alone)
    or while rendering its template: both reach process_exception.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not is_pool_exhausted(exception):
            return None
        busy.warning("no database connection for %s %s: %s", request.method, request.path, exception)
        return busy_response(request)
