from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable

from csp.middleware import CSPMiddleware
from django.conf import settings
from django.contrib.auth.middleware import AuthenticationMiddleware
from django.contrib.messages.middleware import MessageMiddleware
from django.contrib.sessions.middleware import SessionMiddleware
from django.core.exceptions import MiddlewareNotUsed
from django.http import HttpRequest, HttpResponse
from django.utils.log import log_response

from infra import replicas
from infra.errors import bad_request_response, database_unavailable_response, is_database_unavailable
from infra.logs import accepted_request_id, request_id_bound

log = logging.getLogger("questboard.requests")


class RequestLogMiddleware:
    """Log every request in one line: time, method, endpoint, status and duration; and give
    it a request id.

    The id is the client's `X-Request-ID` when that is a sane one (`infra.logs`), else a
    new one. It is on every record logged while the request is served (tracebacks
    included) and in the `X-Request-ID` header of every response, errors too: this is the
    outermost middleware, and Django turns whatever the layers inside raise into a response
    before it gets here. The formatter (`infra.logs.SafeFormatter`) escapes what the
    client chose (the path, the method), so no request can write a line of its own.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        request_id = accepted_request_id(request.META.get("HTTP_X_REQUEST_ID"))
        with request_id_bound(request_id):
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
            # Django logs an error response (django.request) only after the last middleware
            # has returned, where the id is no longer bound; logged here, it carries the id,
            # and Django skips it as already logged. (Exceptions were logged inside already.)
            if response.status_code >= 400:
                log_response("%s: %s", response.reason_phrase, request.path, response=response, request=request)
        response["X-Request-ID"] = request_id
        return response


# Control characters (C0, DEL, C1): no name or parameter of ours holds one, PostgreSQL
# refuses NUL in text, and CR/LF are how log lines and headers are forged.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class ControlCharacterMiddleware:
    """Answer 400 to a URL whose path or query string holds a control character.

    Refused here, once, before any view or lookup sees the value: a `%00` in a username,
    slug or id would otherwise reach PostgreSQL, which raises on NUL (a 500).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if _CONTROL.search(request.path):
            return bad_request_response(request, "The URL path holds a control character.")
        if request.META.get("QUERY_STRING"):
            fields = {
                key: ["Control characters are not allowed."]
                for key, values in request.GET.lists()
                if _CONTROL.search(key) or any(_CONTROL.search(value) for value in values)
            }
            if fields:
                return bad_request_response(request, "The query string holds a control character.", fields)
        return self.get_response(request)


class DatabaseBusyMiddleware:
    """Answer 503 with Retry-After, not 500, when the database cannot serve a view: the pool
    has no connection to lend, or PostgreSQL is down, restarting or refusing connections
    (`infra.errors.is_database_unavailable`). One warning line per refused request.

    A middleware rather than the DRF exception handler alone (which answers the same for API
    views), so pages and the admin answer alike, with DEBUG on too. It sees what a view or
    the rendering of its template raises; what a middleware raises before any view runs
    (the session or signed-in user lookup) reaches `infra.errors.server_error`, which
    answers the same.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not is_database_unavailable(exception):
            return None
        return database_unavailable_response(request, exception)


class ReplicaReadMiddleware:
    """Give each request its read scope (infra.replicas): its reads that may be stale go
    to a replica unless the request writes or its caller is pinned, and a request that
    wrote pins its caller when it ends (read your own writes). Not installed without
    replicas.

    Answering a request again (below) runs the view once more, and with it the view-time
    rate limits: such a request is charged twice. It happens only to a safe request whose
    replica failed under it.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        if not settings.DATABASE_REPLICAS:
            raise MiddlewareNotUsed
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        with replicas.request_reads(request) as scope:
            response = self.get_response(request)
            if scope.replica_failed:
                # The replica went away (stopped, restarted, cut off) under a safe request,
                # which changed nothing: it is answered again, from the primary.
                response = self.get_response(request)
            scope.status = response.status_code
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if replicas.replica_failed(exception):
            return HttpResponse(status=503)  # never sent: __call__ answers the request again
        return None


# The credentials the API authenticates by (tracker.auth): a request carrying one names its
# caller without cookies.
API_CREDENTIALS = ("Api-Key ", "Bearer ")


def is_api_call(request: HttpRequest) -> bool:
    """An API request that names its caller by a game key or an access token: nothing a
    browser middleware keeps (session, CSRF cookie, messages, the signed-in user, a page's
    framing and script policy) applies to it. The API authenticates by neither cookie nor
    session (REST_FRAMEWORK's authentication classes), and its read pins name such a caller
    by the credential (`infra.replicas.caller_subjects`)."""
    return request.path_info.startswith("/api/") and request.META.get("HTTP_AUTHORIZATION", "").startswith(
        API_CREDENTIALS
    )


class BrowserOnly:
    """Mixed into a browser middleware, before it: API calls (`is_api_call`) skip it.

    Each costs an API call something and gives it nothing: the Content-Security-Policy
    header alone was built afresh for every unlock. Pages, the admin, the API docs and API
    requests without a credential (a browser reading boards) go through them as before.
    Subclasses of the middleware they wrap, so Django's checks (the admin's need for
    sessions, auth and messages) still find them.
    """

    sync_capable = True
    async_capable = False  # the layers above it are synchronous: no thread hops

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if is_api_call(request):
            return self.get_response(request)  # type: ignore[attr-defined]
        return super().__call__(request)  # type: ignore[misc]


class Sessions(BrowserOnly, SessionMiddleware):
    pass


class SignedInUser(BrowserOnly, AuthenticationMiddleware):
    pass


class Messages(BrowserOnly, MessageMiddleware):
    pass


class ContentSecurityPolicy(BrowserOnly, CSPMiddleware):
    pass
