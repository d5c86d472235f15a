"""Request ids on every log record, and log lines a client cannot forge.

`RequestLogMiddleware` sets the id of the request being served in a context variable;
`RequestIdFilter`, on the handler, copies it onto each record (``-`` outside a request),
so a traceback logged deep inside a view carries the same id as the request's own log
line and the ``X-Request-ID`` header the client got. `SafeFormatter` escapes control
characters (CR, LF, NUL, ...) in every message, so a path or header a client chose can
never start a line of its own; the lines of a traceback keep their breaks but are
indented, so a line at column 0 is always the start of a genuine record.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

# What we accept from a client's X-Request-ID (a proxy's or a game server's own id):
# short, and nothing that needs escaping anywhere it is echoed or logged.
REQUEST_ID_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,64}")
NO_REQUEST = "-"

_request_id: ContextVar[str] = ContextVar("request_id", default=NO_REQUEST)

# C0 and C1 controls, DEL, and the two Unicode line separators some viewers break lines at.
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def current_request_id() -> str:
    return _request_id.get()


@contextmanager
def request_id_bound(request_id: str) -> Iterator[None]:
    """Every record logged inside the block (this thread or task) carries `request_id`."""
    token = _request_id.set(request_id)
    try:
        yield
    finally:
        _request_id.reset(token)


def accepted_request_id(incoming: str | None) -> str:
    """The client's id if it is a sane one, else a fresh one."""
    if incoming and REQUEST_ID_PATTERN.fullmatch(incoming):
        return incoming
    return uuid.uuid4().hex


def escape_controls(text: str) -> str:
    r"""`text` with every control character written as an escape (``\r``, ``\n``, ``\x00``)."""
    if _UNSAFE.search(text) is None:
        return text
    return _UNSAFE.sub(lambda match: match.group().encode("unicode_escape").decode("ascii"), text)


class RequestIdFilter(logging.Filter):
    """Puts the current request's id on every record, as ``request_id``."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = _request_id.get()
        return True


class SafeFormatter(logging.Formatter):
    """One record, one line: the message escaped; traceback lines escaped and indented.

    `format` is whole here rather than the usual hooks, because `logging.Formatter` reuses a
    traceback another handler's formatter has already rendered (cached on the record),
    which would bypass the escaping.
    """

    def format(self, record: logging.LogRecord) -> str:
        record.message = escape_controls(record.getMessage())
        if not hasattr(record, "request_id"):
            record.request_id = NO_REQUEST
        if self.usesTime():
            record.asctime = self.formatTime(record, self.datefmt)
        lines = [self.formatMessage(record)]
        if record.exc_info:
            lines.append(_indented(self.formatException(record.exc_info)))
        elif record.exc_text:
            lines.append(_indented(record.exc_text))
        if record.stack_info:
            lines.append(_indented(self.formatStack(record.stack_info)))
        return "\n".join(lines)


def _indented(text: str) -> str:
    return "\n".join("    " + escape_controls(line) for line in text.rstrip("\n").split("\n"))
