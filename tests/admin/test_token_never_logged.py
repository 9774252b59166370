"""Defect 4 of issue 15: whatever a client sends (a NUL byte in a header, a header without a colon, a
line past the parser's limit, a broken chunked body), the bearer token never reaches a log line or a
response body. Raw bytes over a real socket; every log record of every logger captured."""

from __future__ import annotations

import asyncio
import logging

import msgspec
import pytest
from aiohttp.http_exceptions import BadHttpMessage

from pool.admin.http_safety import install_log_redaction, redact
from tests.admin.conftest import ADMIN_TOKEN, Running

AUTH = b"Authorization: Bearer " + ADMIN_TOKEN.encode()
MALFORMED = {
    "nul in the authorization header": b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n" + AUTH + b"\x00x\r\n\r\n",
    "nul in a later header": b"GET /api/v1/health HTTP/1.1\r\n" + AUTH + b"\r\nX-A: b\x00\r\n\r\n",
    "header without a colon": b"GET /api/v1/health HTTP/1.1\r\n" + AUTH + b"\r\nno colon here\r\n\r\n",
    "token in the header name": b"GET / HTTP/1.1\r\n" + AUTH.replace(b": ", b"\x01") + b": v\r\n\r\n",
    "authorization line too long": b"GET / HTTP/1.1\r\n" + AUTH + b"A" * 9000 + b"\r\n\r\n",
    "nul in the path": b"GET /api\x00/" + ADMIN_TOKEN.encode() + b" HTTP/1.1\r\n" + AUTH + b"\r\n\r\n",
    "bad method": b"G\x01T / HTTP/1.1\r\n" + AUTH + b"\r\n\r\n",
    "bad version": b"GET / HTTP/9." + ADMIN_TOKEN.encode() + b"\r\n\r\n",
    "broken chunked body": (b"POST /api/v1/bans HTTP/1.1\r\n" + AUTH + b"\r\nTransfer-Encoding: chunked\r\n\r\n"
                            b"zz\r\n" + ADMIN_TOKEN.encode() + b"\r\n"),
    "two content lengths": (b"POST /api/v1/bans HTTP/1.1\r\n" + AUTH + b"\r\nContent-Length: 2\r\n"
                            b"Content-Length: 3\r\n\r\n{}"),
}


async def exchange(port: int, request: bytes) -> bytes:
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 5)
    try:
        writer.write(request)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), 5)   # the server closes after a parse error
    finally:
        writer.close()


@pytest.mark.parametrize("kind", list(MALFORMED))
async def test_malformed_request_keeps_the_token_out_of_logs_and_body(
        admin: Running, caplog: pytest.LogCaptureFixture, kind: str) -> None:
    caplog.set_level(logging.DEBUG)
    answer = await exchange(admin.server.port, MALFORMED[kind])
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.") and b" 400 " in head.split(b"\r\n")[0], answer[:200]
    error = msgspec.json.decode(body)
    assert error["error"] == "bad_request" and error["reason"].startswith("malformed HTTP request: ")
    assert ADMIN_TOKEN.encode() not in answer
    assert caplog.records, "the refusal is logged"
    logged = caplog.text + "".join(str(r.__dict__) for r in caplog.records)
    assert ADMIN_TOKEN not in logged
    assert ADMIN_TOKEN[:8] not in logged


async def test_a_well_formed_request_still_works_after_the_refusals(admin: Running) -> None:
    for request in MALFORMED.values():
        await exchange(admin.server.port, request)
    answer = await exchange(admin.server.port, b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n" + AUTH +
                            b"\r\nConnection: close\r\n\r\n")
    assert answer.split(b"\r\n")[0] == b"HTTP/1.1 200 OK"


def test_redact_masks_credential_shapes_and_keeps_the_rest() -> None:
    assert redact("b'Authorization: Bearer abc123\\x00x'") == "b'Authorization: Bearer [redacted]'"
    assert redact("authorization=abc123 next") == "authorization=[redacted] next"
    assert redact("got token: abc123, done") == "got token: [redacted], done"
    assert redact("admin API has no tokens configured") == "admin API has no tokens configured"


def test_the_log_filter_masks_a_token_in_a_traceback(caplog: pytest.LogCaptureFixture) -> None:
    # Second line of defence: a record that quotes the raw header reaches no handler unmasked.
    install_log_redaction()
    caplog.set_level(logging.DEBUG)
    try:
        raise BadHttpMessage("Invalid header value char:\n\n  b'" + AUTH.decode() + "\\x00'")
    except BadHttpMessage:
        logging.getLogger("aiohttp.server").exception("Error handling %s", AUTH.decode())
    assert caplog.records and "Bearer [redacted]" in caplog.text
    assert ADMIN_TOKEN not in caplog.text and "BadHttpMessage" in caplog.text
