"""A stand-in for bitcoind: a raw asyncio HTTP/1.1 server on 127.0.0.1 that answers each request with
the next recorded Bitcoin Core reply (exact status line, headers and body bytes from the fixture) and
keeps every request it received, so tests can compare what the client sent with what was recorded."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.support import paths

FIXTURES = paths.FIXTURES


def load_fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text())


@dataclass
class ReceivedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Reply:
    status: int
    reason: str
    headers: dict[str, str]
    body: bytes
    delay: float = 0.0

    @classmethod
    def from_fixture(cls, fixture: dict[str, Any], delay: float = 0.0) -> Reply:
        response = fixture["response"]
        return cls(response["status"], response["reason"], response["headers"],
                   response["body"].encode("utf-8"), delay)


def expected_body(fixture: dict[str, Any], sent: bytes) -> bytes:
    """The recorded request body with its JSON-RPC id replaced by the id the client actually sent."""
    sent_id = json.loads(sent)["id"]
    recorded = fixture["request"]["body"]
    return re.sub(r'"id":\d+', f'"id":{sent_id}', recorded, count=1).encode("utf-8")


@dataclass
class FixtureNode:
    replies: list[Reply] = field(default_factory=list)
    received: list[ReceivedRequest] = field(default_factory=list)
    on_request: Callable[[ReceivedRequest], None] | None = None
    port: int = 0
    _server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def queue(self, *fixtures: str | dict[str, Any] | Reply, delay: float = 0.0) -> None:
        for item in fixtures:
            if isinstance(item, Reply):
                self.replies.append(item)
            else:
                fixture = load_fixture(item) if isinstance(item, str) else item
                self.replies.append(Reply.from_fixture(fixture, delay))

    async def start(self) -> FixtureNode:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if line:
                        key, _, value = line.partition(":")
                        headers[key.strip()] = value.strip()
                length = int(next((v for k, v in headers.items() if k.lower() == "content-length"), "0"))
                body = await reader.readexactly(length) if length else b""
                request = ReceivedRequest(method, path, headers, body)
                self.received.append(request)
                if self.on_request is not None:
                    self.on_request(request)
                reply = self.replies.pop(0) if self.replies else Reply(599, "No Fixture Queued", {}, b"")
                if reply.delay:
                    await asyncio.sleep(reply.delay)
                status_line = f"HTTP/1.1 {reply.status} {reply.reason}\r\n"
                header_lines = "".join(f"{k}: {v}\r\n" for k, v in reply.headers.items())
                writer.write((status_line + header_lines + "\r\n").encode("latin-1") + reply.body)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
