"""The API's JSON parser: DRF's, refusing documents no endpoint of ours could mean.

It is the default parser of every API view (`REST_FRAMEWORK` in settings), simplejwt's
token views included, so each of these is a 400 `parse_error` before any view runs:

- nesting deeper than `MAX_JSON_DEPTH`: the deepest document we take (a manifest, a batch)
  is 3 levels; without a bound, 100,000 nested `[` raise RecursionError in the decoder (a
  500), and deep data would recurse through every serializer after it;
- a string (value or key) holding an unpaired UTF-16 surrogate (`"\\ud800"`): valid JSON
  syntax, but not text, so it can be neither stored nor echoed back in an error message.

`FastNegotiation` is every API view's content negotiation: the same answer as DRF's, without
parsing the Accept header when it asks for anything (or nothing) at all.
"""

from __future__ import annotations

import re
from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.parsers import JSONParser
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request

MAX_JSON_DEPTH = 32

_SURROGATE = re.compile(r"[\ud800-\udfff]")


class BoundedJSONParser(JSONParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: dict[str, Any] | None = None) -> Any:
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(f"JSON parse error - nested deeper than {MAX_JSON_DEPTH} levels.") from None
        check_document(data)
        return data


def check_document(data: Any) -> None:
    """Walk the parsed document (iteratively: depth is what is in question) and refuse it
    if it nests too deep or holds a string that is not valid Unicode text."""
    pending: list[tuple[Any, int]] = [(data, 1)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, str):
            if _SURROGATE.search(value):
                raise ParseError("JSON parse error - a string holds an unpaired surrogate (not valid Unicode).")
        elif isinstance(value, dict | list):
            if depth > MAX_JSON_DEPTH:
                raise ParseError(f"JSON parse error - nested deeper than {MAX_JSON_DEPTH} levels.")
            if isinstance(value, dict):
                pending.extend((key, depth) for key in value)
                pending.extend((item, depth + 1) for item in value.values())
            else:
                pending.extend((item, depth + 1) for item in value)


class FastNegotiation(DefaultContentNegotiation):
    """DRF's negotiation, answered at once for what game servers send: no Accept, `*/*`, or
    exactly the view's first renderer's type, and no `?format=` or format suffix. DRF then
    picks that first renderer too; parsing the header for it was a tenth of a millisecond
    of every unlock. Anything else goes through DRF's own rules (406 included)."""

    def select_renderer(
        self, request: Request, renderers: list[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        if renderers and not format_suffix and not request.META.get("QUERY_STRING"):
            first, accept = renderers[0], request.META.get("HTTP_ACCEPT", "*/*")
            if accept == "*/*" or accept == first.media_type:
                return first, first.media_type
        return super().select_renderer(request, renderers, format_suffix)
