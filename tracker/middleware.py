from __future__ import annotations

import logging
import time
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

log = logging.getLogger("questboard.requests")


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
