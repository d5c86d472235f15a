"""The one error shape of the API, and the exception handler that produces it.

Every error body is ``{"error": {"status", "code", "message", "fields"?}}``. Services raise
`DomainError` subclasses; DRF and Django exceptions are mapped to the same shape, so a
client never has to parse two formats and bad input never becomes a 500.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from typing import Any, TypeVar

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponse, HttpResponsePermanentRedirect, JsonResponse
from django.urls import Resolver404, resolve
from django.views import defaults
from django.views.decorators.csrf import csrf_exempt
from psycopg import OperationalError as PsycopgOperationalError
from psycopg_pool import PoolClosed, PoolTimeout, TooManyRequests
from rest_framework import exceptions, status
from rest_framework.response import Response

from infra.logs import current_request_id


class DomainError(Exception):
    status = status.HTTP_400_BAD_REQUEST
    code = "invalid"

    def __init__(self, message: str, *, fields: dict[str, list[str]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields


class Invalid(DomainError):
    pass


class NotFound(DomainError):
    status = status.HTTP_404_NOT_FOUND
    code = "not_found"


class Forbidden(DomainError):
    status = status.HTTP_403_FORBIDDEN
    code = "forbidden"


class Conflict(DomainError):
    status = status.HTTP_409_CONFLICT
    code = "conflict"


class TooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "Request body too large."
    default_code = "too_large"


def error_body(status_code: int, code: str, message: str, fields: Any = None) -> dict[str, Any]:
    body: dict[str, Any] = {"status": status_code, "code": code, "message": message}
    if fields:
        body["fields"] = fields
    return {"error": body}


def _first_message(detail: Any) -> str:
    if isinstance(detail, dict):
        for key, value in detail.items():
            # Keys that name no field (DRF's and simplejwt's) are not worth prefixing.
            if key in ("non_field_errors", "detail"):
                return _first_message(value)
            return f"{key}: {_first_message(value)}"
    if isinstance(detail, list) and detail:
        return _first_message(detail[0])
    return str(detail)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    # Imported here: rest_framework.views imports the authentication classes, which import us.
    from rest_framework.views import set_rollback

    from infra import replicas

    headers: dict[str, str] = {}
    if replicas.replica_failed(exc):
        # Never sent: infra.middleware.ReplicaReadMiddleware answers the request again, from
        # the primary, as it does for a page.
        return Response(status=503)
    if is_database_unavailable(exc):
        set_rollback()
        response = Response(error_body(503, "unavailable", _unavailable_message(exc)), status=503)
        return _logged_once(context["request"], exc, response)
    if isinstance(exc, DomainError):
        set_rollback()
        return Response(error_body(exc.status, exc.code, exc.message, exc.fields), status=exc.status)
    if isinstance(exc, RequestDataTooBig):
        exc = TooLarge()
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    if not isinstance(exc, exceptions.APIException):
        return None

    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    if getattr(exc, "wait", None):
        headers["Retry-After"] = str(int(exc.wait))
    set_rollback()

    detail = exc.detail
    if isinstance(exc, exceptions.ValidationError):
        fields = detail if isinstance(detail, dict) else {"non_field_errors": detail}
        body = error_body(exc.status_code, "invalid", _first_message(detail), fields)
    else:
        if isinstance(detail, dict) and "code" in detail:
            code = detail["code"]  # simplejwt's reason: token_not_valid, password_changed, sessions_ended, …
        else:
            code = detail.code if hasattr(detail, "code") else getattr(exc, "default_code", "error")
        body = error_body(exc.status_code, str(code), _first_message(detail))
    return Response(body, status=exc.status_code, headers=headers)


def _wants_json(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


# Seconds a client is asked to wait after a 503 for want of the database: long enough for
# the burst that drained the pool to pass, or a restarted PostgreSQL to take connections
# again, short enough for a game to retry.
BUSY_RETRY_AFTER_SECONDS = 2

# What PostgreSQL answers when it cannot serve a connection at all, whatever the request:
# connection exceptions (class 08), shutting down or crashed (57P01, 57P02), starting up
# (57P03), no connection slot left ("too many clients", 53300).
_UNAVAILABLE_SQLSTATE_CLASSES = ("08",)
_UNAVAILABLE_SQLSTATES = frozenset({"57P01", "57P02", "57P03", "53300"})

unavailable_log = logging.getLogger("questboard.database")
_Response = TypeVar("_Response", bound=HttpResponse)


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """`exc` and what it was raised from: Django re-raises each database error as its own
    (django.db.OperationalError) with psycopg's as __cause__."""
    seen: BaseException | None = exc
    while seen is not None:
        yield seen
        seen = seen.__cause__


def is_pool_exhausted(exc: BaseException) -> bool:
    """Whether `exc` is the connection pool failing to lend a connection in time.

    psycopg_pool raises PoolTimeout (or TooManyRequests when its queue is full) from
    connection creation, where Django re-raises it as django.db.OperationalError with the
    pool's error as its __cause__; both are overload, not a fault, so they answer 503.
    """
    return any(isinstance(seen, (PoolTimeout, TooManyRequests)) for seen in _causes(exc))


def is_database_unavailable(exc: BaseException) -> bool:
    """Whether `exc` is the database failing to serve the request at all, rather than the
    request's own fault: no pooled connection came free in time (`is_pool_exhausted`), or
    PostgreSQL refused, dropped or closed the connection, is shutting down or starting up,
    or has no connection slot left. Such a request answers 503 with Retry-After, from every
    server, and is safe to retry: whatever it wrote either committed whole or not at all.

    psycopg 3 raises every failure of the connection itself as an OperationalError: without
    a SQLSTATE when libpq found it (refused, lost, closed), with one when the server said so.
    Any other error (a programming, integrity or data error, a cancelled statement, a
    deadlock, psycopg's InterfaceError for a closed cursor, the pool closed at shut-down)
    is a bug or the request's own, and stays what it is.
    """
    for seen in _causes(exc):
        if isinstance(seen, (PoolTimeout, TooManyRequests)):
            return True
        if isinstance(seen, PsycopgOperationalError) and not isinstance(seen, PoolClosed):
            sqlstate = seen.sqlstate
            return (
                sqlstate is None
                or sqlstate.startswith(_UNAVAILABLE_SQLSTATE_CLASSES)
                or sqlstate in _UNAVAILABLE_SQLSTATES
            )
    return False


def _unavailable_message(exc: BaseException) -> str:
    if is_pool_exhausted(exc):
        return "The server is busy: no database connection came free in time. Retry shortly."
    return "The database is unavailable for a moment. Retry shortly."


def _logged_once(request: HttpRequest, exc: BaseException, response: _Response) -> _Response:
    """One warning line for the request, no traceback; the response is marked as logged,
    so neither Django's handler nor the request log (`log_response`) logs it again as an
    error. An outage then costs one line per refused request, not a traceback each."""
    first_line = str(exc).strip().split("\n", 1)[0]
    unavailable_log.warning("no database connection for %s %s: %s", request.method, request.path, first_line)
    response["Retry-After"] = str(BUSY_RETRY_AFTER_SECONDS)
    response._has_been_logged = True  # type: ignore[attr-defined]
    return response


def database_unavailable_response(request: HttpRequest, exc: BaseException) -> HttpResponse:
    """503 with Retry-After for a request `is_database_unavailable` refused: the one error
    shape under /api/, plain text for pages."""
    message = _unavailable_message(exc)
    if _wants_json(request):
        response: HttpResponse = JsonResponse(error_body(503, "unavailable", message), status=503)
    else:
        response = HttpResponse(message, status=503, content_type="text/plain; charset=utf-8")
    return _logged_once(request, exc, response)


def bad_request_response(
    request: HttpRequest, message: str, fields: dict[str, list[str]] | None = None
) -> HttpResponse:
    """400 for a request refused before any view saw it: the one error shape under /api/,
    Django's plain 400 page elsewhere."""
    if _wants_json(request):
        return JsonResponse(error_body(400, "invalid", message, fields), status=400)
    return defaults.bad_request(request, SuspiciousOperation(message))


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500. The message names the request id (also in the X-Request-ID header) so a
    caller can quote it, and an operator find the logged traceback by it.

    A database that cannot serve is no bug: an error raised where no view's handler sees it
    (a middleware's session or signed-in user lookup, before any view runs) answers 503 here,
    as `infra.middleware.DatabaseBusyMiddleware` answers those of views. Django calls this
    while handling the exception, so it is the one in hand."""
    handled = sys.exc_info()[1]
    if handled is not None and is_database_unavailable(handled):
        return database_unavailable_response(request, handled)
    if _wants_json(request):
        message = f"Internal server error (request id {current_request_id()})."
        return JsonResponse(error_body(500, "server_error", message), status=500)
    return defaults.server_error(request)


NO_SUCH_ENDPOINT = "No such endpoint."


@csrf_exempt
def api_not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
    """Every /api/ path no route matched (the last route of config/urls.py): the one error
    shape, DEBUG or not. `handler404` answers alike, but only with DEBUG off; with it on,
    Django answers an unmatched path with its HTML debug page and never asks the handler.

    Matching every /api/ path also stops APPEND_SLASH from seeing any as unmatched, so the
    redirect it would have made for a page under /api/ (the schema, the docs) is made here."""
    path = request.path_info
    if request.method in ("GET", "HEAD") and not path.endswith("/"):
        try:
            slashed = resolve(path + "/")
        except Resolver404:
            slashed = None
        if slashed is not None and slashed.func is not api_not_found:
            return HttpResponsePermanentRedirect(request.get_full_path(force_append_slash=True))
    return JsonResponse(error_body(404, "not_found", NO_SUCH_ENDPOINT), status=404)


def json_or_default(status_code: int, code: str, message: str, default: Any) -> Any:
    def view(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if _wants_json(request):
            return JsonResponse(error_body(status_code, code, message), status=status_code)
        return default(request, *args, **kwargs)

    return view
