"""The one error shape of the API, and the exception handler that produces it.

Every error body is ``{"error": {"status", "code", "message", "fields"?}}``. Services raise
`DomainError` subclasses; DRF and Django exceptions are mapped to the same shape, so a
client never has to parse two formats and bad input never becomes a 500.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponse, HttpResponsePermanentRedirect, JsonResponse
from django.urls import Resolver404, resolve
from django.views import defaults
from django.views.decorators.csrf import csrf_exempt
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

    headers: dict[str, str] = {}
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


# Seconds a client is asked to wait after a 503 for want of a database connection: long
# enough for the burst that drained the pool to pass, short enough for a game to retry.
BUSY_RETRY_AFTER_SECONDS = 2


def is_pool_exhausted(exc: BaseException) -> bool:
    """Whether `exc` is the connection pool failing to lend a connection in time.

    psycopg_pool raises PoolTimeout (or TooManyRequests when its queue is full) from
    connection creation, where Django re-raises it as django.db.OperationalError with the
    pool's error as its __cause__; both are overload, not a fault, so they answer 503.
    """
    try:
        from psycopg_pool import PoolTimeout, TooManyRequests
    except ImportError:  # no pool without psycopg_pool, so nothing to recognise
        return False
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, (PoolTimeout, TooManyRequests)):
            return True
        seen = seen.__cause__
    return False


def busy_response(request: HttpRequest) -> HttpResponse:
    """503 with Retry-After: the one error shape under /api/, plain text for pages."""
    message = "The server is busy: no database connection came free in time. Retry shortly."
    if _wants_json(request):
        response: HttpResponse = JsonResponse(error_body(503, "unavailable", message), status=503)
    else:
        response = HttpResponse(message, status=503, content_type="text/plain; charset=utf-8")
    response["Retry-After"] = str(BUSY_RETRY_AFTER_SECONDS)
    return response


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
    caller can quote it, and an operator find the logged traceback by it."""
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
