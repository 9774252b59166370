"""Bitcoin Core JSON-RPC over HTTP (aiohttp): typed errors, retries, health, failover across nodes."""

from __future__ import annotations

import asyncio
import base64
import itertools
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit

import aiohttp
import msgspec

log = logging.getLogger(__name__)

RPC_IN_WARMUP = -28
RPC_METHOD_NOT_FOUND = -32601

__all__ = [
    "RPC_IN_WARMUP",
    "RPC_METHOD_NOT_FOUND",
    "ChainBackend",
    "NodeHealth",
    "NodeSet",
    "RpcAuthError",
    "RpcClient",
    "RpcError",
    "RpcHttpError",
    "RpcMethodNotFoundError",
    "RpcTimeoutError",
    "RpcTransportError",
    "RpcWarmupError",
    "gbt_rules",
]


class RpcError(Exception):
    """A JSON-RPC error reply (code/message from the node) or a failure to get one."""

    retryable = False  # worth asking the same node again after a pause
    node_failure = False  # says nothing about the request: another node may answer it

    def __init__(self, message: str, code: int | None = None, node: str = "") -> None:
        super().__init__(f"{node}: {message}" if node else message)
        self.code = code
        self.message = message
        self.node = node


class RpcTransportError(RpcError):
    """Connection refused/reset, timeout, or a reply that is not HTTP."""

    retryable = True
    node_failure = True


class RpcTimeoutError(RpcTransportError):
    """No reply within the call's timeout (normal for a longpoll that outlives it)."""


class RpcAuthError(RpcError):
    """HTTP 401: Core answers a wrong user/password (or a stale cookie) with an empty body."""

    node_failure = True


class RpcHttpError(RpcError):
    """An HTTP status with no JSON-RPC reply in the body (e.g. 405, a proxy's 502, 503 work queue full)."""

    node_failure = True

    def __init__(self, message: str, status: int, node: str = "") -> None:
        super().__init__(message, None, node)
        self.status = status
        self.retryable = status in (502, 503, 504)


class RpcWarmupError(RpcError):
    """-28: the node is still starting (loading the block index, verifying blocks, ...)."""

    retryable = True
    node_failure = True


class RpcMethodNotFoundError(RpcError):
    """-32601: the node (or the wallet endpoint) does not have this method."""

    node_failure = True


def gbt_rules(network: str) -> list[str]:
    """Core refuses getblocktemplate without segwit, and on signet without signet."""
    return ["segwit", "signet"] if network == "signet" else ["segwit"]


class NodeHealth(msgspec.Struct, kw_only=True):
    name: str
    url: str
    healthy: bool = True
    calls: int = 0
    failures: int = 0
    consecutive_failures: int = 0
    last_ok_at: float = 0.0
    last_error: str = ""
    last_error_at: float = 0.0
    latency_ms: float = 0.0  # of the last successful call

    def record_ok(self, elapsed: float) -> None:
        self.calls += 1
        self.healthy = True
        self.consecutive_failures = 0
        self.last_ok_at = time.time()
        self.latency_ms = elapsed * 1000.0

    def record_failure(self, error: RpcError) -> None:
        self.calls += 1
        self.failures += 1
        self.consecutive_failures += 1
        self.healthy = False
        self.last_error = str(error)
        self.last_error_at = time.time()


class ChainBackend(Protocol):
    """What pool.chain asks of a node: RpcClient, NodeSet and the in-process devnet all provide it."""

    name: str
    health: NodeHealth

    async def getblocktemplate(
        self, rules: Sequence[str], longpollid: str | None = None, timeout: float | None = None
    ) -> dict[str, Any]: ...
    async def submitblock(self, block_hex: str) -> str | None: ...
    async def getbestblockhash(self) -> str: ...
    async def getblockhash(self, height: int) -> str: ...
    async def getblockheader(self, block_hash: str, verbose: bool = True) -> Any: ...
    async def getblockchaininfo(self) -> dict[str, Any]: ...
    async def getmininginfo(self) -> dict[str, Any]: ...
    async def close(self) -> None: ...


_REPLY_DECODER = msgspec.json.Decoder()
_ENCODER = msgspec.json.Encoder()


class RpcClient:
    """One Bitcoin Core node. Each call is one HTTP POST with one JSON-RPC 1.0 request (never batched)."""

    def __init__(
        self,
        url: str,
        *,
        user: str = "",
        password: str = "",
        cookie_file: str = "",
        name: str = "",
        timeout: float = 10.0,
        retries: int = 2,
        retry_delay: float = 0.2,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"RPC url must be http(s)://host:port[/path], got {url!r}")
        self.url = url
        self.name = name or parts.netloc
        self.timeout = timeout
        self.retries = retries
        self.retry_delay = retry_delay
        self._user = user
        self._password = password
        self._cookie_file = cookie_file
        self._auth_header = ""
        self._ids = itertools.count(1)
        self._session: aiohttp.ClientSession | None = None
        self.health = NodeHealth(name=self.name, url=url)

    # --- plumbing ----------------------------------------------------------------------------------------

    def _authorization(self, reload_cookie: bool = False) -> str:
        if self._auth_header and not reload_cookie:
            return self._auth_header
        user, password = self._user, self._password
        if not user and self._cookie_file:
            try:
                user, _, password = Path(self._cookie_file).read_text().strip().partition(":")
            except OSError as exc:
                raise RpcAuthError(f"cannot read cookie file {self._cookie_file}: {exc}", node=self.name) from None
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        self._auth_header = f"Basic {token}"
        return self._auth_header

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=32), auto_decompress=False
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    def _parse_reply(self, status: int, body: bytes) -> Any:
        if status == 401:
            raise RpcAuthError("HTTP 401 Unauthorized: wrong RPC user/password or cookie", node=self.name)
        try:
            reply = _REPLY_DECODER.decode(body) if body else None
        except msgspec.DecodeError:
            reply = None
        if not isinstance(reply, dict) or ("result" not in reply and "error" not in reply):
            text = body[:200].decode("utf-8", "replace").strip()
            raise RpcHttpError(f"HTTP {status} without a JSON-RPC reply: {text!r}", status, node=self.name)
        error = reply.get("error")
        if error is not None:
            code = error.get("code") if isinstance(error, dict) else None
            message = str(error.get("message", error)) if isinstance(error, dict) else str(error)
            if code == RPC_IN_WARMUP:
                raise RpcWarmupError(message, code, self.name)
            if code == RPC_METHOD_NOT_FOUND:
                raise RpcMethodNotFoundError(message, code, self.name)
            raise RpcError(message, code, self.name)
        if status != 200:
            raise RpcHttpError(f"HTTP {status} with a result and no error", status, node=self.name)
        return reply.get("result")

    async def _post_once(self, method: str, params: Sequence[Any], timeout: float) -> Any:
        body = _ENCODER.encode({"jsonrpc": "1.0", "id": next(self._ids), "method": method, "params": params})
        session = self._get_session()
        for attempt in range(2):
            headers = {"Authorization": self._authorization(reload_cookie=attempt > 0),
                       "Content-Type": "application/json"}
            try:
                async with session.post(
                    self.url, data=body, headers=headers, timeout=aiohttp.ClientTimeout(total=timeout)
                ) as response:
                    status = response.status
                    payload = await response.read()
            except TimeoutError:
                raise RpcTimeoutError(f"{method} timed out after {timeout:g} s", node=self.name) from None
            except (aiohttp.ClientError, OSError) as exc:
                raise RpcTransportError(f"{method} transport error: {exc!r}", node=self.name) from None
            if status == 401 and self._cookie_file and not self._user and attempt == 0:
                continue  # the node restarted and wrote a new cookie
            return self._parse_reply(status, payload)
        raise AssertionError("unreachable")

    async def call(
        self, method: str, params: Sequence[Any] = (), *, timeout: float | None = None, longpoll: bool = False
    ) -> Any:
        """One RPC; transport errors, warm-up and 502-504 are retried `retries` times, then raised.

        With longpoll=True a timeout is raised at once and does not count against the node's health.
        """
        limit = self.timeout if timeout is None else timeout
        attempt = 0
        while True:
            started = time.perf_counter()
            try:
                result = await self._post_once(method, list(params), limit)
            except RpcError as exc:
                if longpoll and isinstance(exc, RpcTimeoutError):
                    raise
                if exc.node_failure:
                    self.health.record_failure(exc)
                else:
                    self.health.record_ok(time.perf_counter() - started)  # the node answered
                if not exc.retryable or attempt >= self.retries:
                    raise
                attempt += 1
                log.info("%s: %s (retry %d/%d)", self.name, exc.message, attempt, self.retries)
                await asyncio.sleep(self.retry_delay * attempt)
                continue
            self.health.record_ok(time.perf_counter() - started)
            return result

    # --- methods ------------------------------------------------------------------------------------------

    async def getblocktemplate(
        self, rules: Sequence[str] = ("segwit",), longpollid: str | None = None, timeout: float | None = None
    ) -> dict[str, Any]:
        request: dict[str, Any] = {"rules": list(rules)}
        if longpollid is not None:
            request["longpollid"] = longpollid
        result = await self.call("getblocktemplate", [request], timeout=timeout, longpoll=longpollid is not None)
        if not isinstance(result, dict):
            raise RpcError(f"getblocktemplate returned {type(result).__name__}", node=self.name)
        return result

    async def submitblock(self, block_hex: str) -> str | None:
        result = await self.call("submitblock", [block_hex])
        return None if result is None else str(result)

    async def getbestblockhash(self) -> str:
        return str(await self.call("getbestblockhash"))

    async def getblockhash(self, height: int) -> str:
        return str(await self.call("getblockhash", [height]))

    async def getblockheader(self, block_hash: str, verbose: bool = True) -> Any:
        return await self.call("getblockheader", [block_hash, verbose])

    async def getblockchaininfo(self) -> dict[str, Any]:
        return dict(await self.call("getblockchaininfo"))

    async def getmininginfo(self) -> dict[str, Any]:
        return dict(await self.call("getmininginfo"))

    async def getblockcount(self) -> int:
        return int(await self.call("getblockcount"))

    async def getdifficulty(self) -> float:
        return float(await self.call("getdifficulty"))


T = TypeVar("T")


class NodeSet:
    """Several nodes behind one ChainBackend: each call goes to the first healthy node, failing over
    on node failures (transport, auth, warm-up, HTTP). A node's answer to the request itself
    (e.g. -8 bad parameter) is raised at once: another node would say the same."""

    def __init__(self, nodes: Sequence[ChainBackend]) -> None:
        if not nodes:
            raise ValueError("a NodeSet needs at least one node")
        self.nodes = list(nodes)
        self.name = ",".join(n.name for n in self.nodes)
        self.health = self.nodes[0].health

    def _ordered(self) -> list[ChainBackend]:
        # Config order among healthy nodes, then the unhealthy ones (they may have recovered).
        return sorted(self.nodes, key=lambda n: not n.health.healthy)

    async def _first(self, call: Callable[[ChainBackend], Awaitable[T]], longpoll: bool = False) -> T:
        last: RpcError | None = None
        for node in self._ordered():
            try:
                result = await call(node)
            except RpcError as exc:
                if not exc.node_failure or (longpoll and isinstance(exc, RpcTimeoutError)):
                    raise
                log.warning("node %s failed (%s); trying the next one", node.name, exc.message)
                last = exc
                continue
            self.health = node.health
            return result
        assert last is not None
        raise last

    async def getblocktemplate(
        self, rules: Sequence[str] = ("segwit",), longpollid: str | None = None, timeout: float | None = None
    ) -> dict[str, Any]:
        return await self._first(lambda n: n.getblocktemplate(rules, longpollid, timeout),
                                 longpoll=longpollid is not None)

    async def submitblock(self, block_hex: str) -> str | None:
        return await self._first(lambda n: n.submitblock(block_hex))

    async def getbestblockhash(self) -> str:
        return await self._first(lambda n: n.getbestblockhash())

    async def getblockhash(self, height: int) -> str:
        return await self._first(lambda n: n.getblockhash(height))

    async def getblockheader(self, block_hash: str, verbose: bool = True) -> Any:
        return await self._first(lambda n: n.getblockheader(block_hash, verbose))

    async def getblockchaininfo(self) -> dict[str, Any]:
        return await self._first(lambda n: n.getblockchaininfo())

    async def getmininginfo(self) -> dict[str, Any]:
        return await self._first(lambda n: n.getmininginfo())

    async def close(self) -> None:
        await asyncio.gather(*(n.close() for n in self.nodes), return_exceptions=True)
