"""Bearer tokens never reach a log line or a response body, whatever a client sends.

aiohttp answers a request its parser refuses (a NUL byte in a header, a header line without a colon,
a line too long) from `RequestHandler.handle_error`, outside the application and its middleware: it
logs the parser's exception, whose message quotes the raw offending line (the whole `Authorization`
line, token included), and echoes that message as the 400 body. Here the admin server's handler
answers such requests itself: one log line with the error kind only, and the JSON error body the rest
of the API uses. A filter on every logger the HTTP stack writes to masks anything shaped like a
credential as a second line of defence (tracebacks included).
"""

from __future__ import annotations

import logging
import re
from typing import Any

import msgspec
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from pool.admin.responses import ErrorBody

log = logging.getLogger("geostratum.admin")

# Loggers the admin HTTP stack writes to (aiohttp's own, and ours: access log and errors).
HTTP_LOGGERS = ("aiohttp.server", "aiohttp.access", "aiohttp.web", "aiohttp.internal", "geostratum.admin")
REDACTED = "[redacted]"
_CREDENTIAL = re.compile(
    r"(?i)((?:proxy-)?authorization\s*[:=]\s*(?:[A-Za-z]+\s+)?|\bbearer\s+|\btoken\s*[:=]\s*)[^\s'\",;]+")
_SAFE_REASON = re.compile(r"^[A-Za-z][A-Za-z0-9 ,./()-]{0,80}$")


def redact(text: str) -> str:
    """`text` with every credential-shaped value (after Authorization:, Bearer, token=) masked."""
    return _CREDENTIAL.sub(lambda match: match.group(1) + REDACTED, text)


class RedactCredentials(logging.Filter):
    """Masks credentials in a record's message, arguments and traceback before any handler sees it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


_FILTER = RedactCredentials()


def install_log_redaction() -> None:
    """Attach the redaction filter to the HTTP stack's loggers (idempotent)."""
    for name in HTTP_LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)


def parse_error_reason(exc: BaseException | None) -> str:
    """What was wrong with a request the HTTP parser refused, in words that quote none of its bytes
    ("Invalid header value char", "Bad status line"...; the class name when the words are not safe)."""
    if isinstance(exc, HttpProcessingError):
        first = str(exc.message).strip().split("\n", 1)[0].strip().rstrip(":").strip()
        if _SAFE_REASON.match(first):
            return first
    return type(exc).__name__ if exc is not None else "malformed request"


class SafeRequestHandler(web.RequestHandler):
    """aiohttp's connection handler, answering the errors it handles itself without quoting the
    request (see the module docstring)."""

    def handle_error(self, request: web.BaseRequest, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        if isinstance(exc, HttpProcessingError):
            status = exc.code if 400 <= exc.code < 500 else status
            reason = f"malformed HTTP request: {parse_error_reason(exc)}"
            log.info("refused a malformed HTTP request from %s: %s", request.remote, parse_error_reason(exc))
            error = "bad_request"
        elif status == 504:
            reason, error = "the request took too long", "timeout"
            log.warning("admin request from %s timed out", request.remote)
        else:
            reason, error = "internal error; see the pool log", "internal"
            log.error("admin request from %s failed", request.remote, exc_info=exc)
        if request.writer.output_size > 0:
            # Part of a response went out already: the connection is broken, as aiohttp decides.
            raise ConnectionError("response already started; cannot send the error")
        response = web.Response(status=status, content_type="application/json",
                                body=msgspec.json.encode(ErrorBody(status=status, error=error, reason=reason)))
        response.force_close()
        return response


class SafeServer(web.Server):
    def __call__(self) -> web.RequestHandler:
        return SafeRequestHandler(self, loop=self._loop, **self._kwargs)


class SafeAppRunner(web.AppRunner):
    """web.AppRunner whose connections are handled by SafeRequestHandler."""

    async def _make_server(self) -> web.Server:
        made = await super()._make_server()
        kwargs: dict[str, Any] = dict(made._kwargs)
        return SafeServer(made.request_handler, request_factory=made.request_factory,
                          handler_cancellation=made.handler_cancellation, loop=made._loop, **kwargs)
