"""The devnet's asyncio face: DevnetBackend (same interface as RpcClient, for one process) and
DevnetRpcServer (a Bitcoin-Core-compatible JSON-RPC server on loopback, so N worker processes share
one chain through the ordinary RPC client).

Run standalone: python -m pool.chain.devnet_server [--config FILE] [--host H] [--port P]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hmac
import logging
import signal
from collections.abc import Sequence
from typing import Any

import msgspec
from aiohttp import web

from pool.aio import wait_set
from pool.bitcoin.address import AddressError, address_to_script
from pool.bitcoin.encoding import DecodeError, internal_to_display
from pool.chain.devnet import Devnet, DevnetBlock
from pool.chain.devnet_store import open_devnet
from pool.chain.rpc import RPC_METHOD_NOT_FOUND, NodeHealth, RpcError
from pool.config.chain import DevnetConfig, NodeConfig

log = logging.getLogger(__name__)

__all__ = ["DevnetBackend", "DevnetRpcServer", "main", "serve_devnet"]

_SEGWIT_REQUIRED = ("getblocktemplate must be called with the segwit rule set "
                    '(call with {"rules": ["segwit"]})')


class DevnetBackend:
    """An in-process ChainBackend over a Devnet; errors are the RpcErrors bitcoind's replies become."""

    def __init__(self, devnet: Devnet, *, name: str = "devnet", network: str = "devnet") -> None:
        self.devnet = devnet
        self.name = name
        self.network = network
        self.health = NodeHealth(name=name, url="in-process")
        self._tip_changed = asyncio.Event()
        devnet.listeners.append(self._on_new_tip)

    def _on_new_tip(self, _block: DevnetBlock) -> None:
        # Wake every longpoll waiting on the old tip, then arm a fresh event for the next one.
        self._tip_changed.set()
        self._tip_changed = asyncio.Event()

    def release_longpolls(self) -> None:
        """Answer every waiting longpoll now (shutdown)."""
        self._tip_changed.set()
        self._tip_changed = asyncio.Event()

    def _ok(self) -> None:
        self.health.record_ok(0.0)

    async def getblocktemplate(
        self, rules: Sequence[str] = ("segwit",), longpollid: str | None = None, timeout: float | None = None
    ) -> dict[str, Any]:
        if "segwit" not in rules:
            raise RpcError(_SEGWIT_REQUIRED, -8, self.name)
        if longpollid is not None and longpollid[:64] == internal_to_display(self.devnet.tip.hash):
            wait = self.devnet.config.longpoll_timeout if timeout is None else min(
                timeout, self.devnet.config.longpoll_timeout)
            await wait_set(self._tip_changed, wait)
        self._ok()
        return self.devnet.template()

    async def submitblock(self, block_hex: str) -> str | None:
        try:
            raw = bytes.fromhex(block_hex)
            reason = self.devnet.submit_block(raw)
        except (ValueError, DecodeError):
            raise RpcError("Block decode failed", -22, self.name) from None
        self._ok()
        return reason

    async def getbestblockhash(self) -> str:
        self._ok()
        return internal_to_display(self.devnet.tip.hash)

    async def getblockhash(self, height: int) -> str:
        try:
            return internal_to_display(self.devnet.block_at(int(height)).hash)
        except LookupError as exc:
            raise RpcError(str(exc), -8, self.name) from None

    async def getblockheader(self, block_hash: str, verbose: bool = True) -> Any:
        try:
            block = self.devnet.block_by_hash(block_hash)
        except ValueError:
            raise RpcError(f"hash must be of length 64 (not {len(block_hash)}, for '{block_hash}')", -8,
                           self.name) from None
        except LookupError as exc:
            raise RpcError(str(exc), -5, self.name) from None
        return self.devnet.header_json(block) if verbose else block.header.raw.hex()

    async def getblockchaininfo(self) -> dict[str, Any]:
        return self.devnet.blockchain_info()

    async def getmininginfo(self) -> dict[str, Any]:
        return self.devnet.mining_info()

    async def getblockcount(self) -> int:
        return self.devnet.height

    async def getdifficulty(self) -> float:
        return self.devnet.difficulty

    async def getnetworkhashps(self, blocks: int = 120, _height: int = -1) -> float:
        return self.devnet.network_hashps(int(blocks) if int(blocks) > 0 else 120)

    async def generatetoaddress(self, count: int, address: str) -> list[str]:
        try:
            script = address_to_script(address, self.network)
        except AddressError as exc:
            raise RpcError(f"Error: Invalid address ({exc})", -5, self.name) from None
        hashes = []
        for _ in range(int(count)):
            try:
                hashes.append(internal_to_display(self.devnet.generate(script).hash))
            except RuntimeError as exc:
                raise RpcError(str(exc), -1, self.name) from None
        return hashes

    async def close(self) -> None:
        with contextlib.suppress(ValueError):
            self.devnet.listeners.remove(self._on_new_tip)


_METHODS = {
    "getblocktemplate", "submitblock", "getbestblockhash", "getblockhash", "getblockheader",
    "getblockchaininfo", "getmininginfo", "getblockcount", "getdifficulty", "getnetworkhashps",
    "generatetoaddress",
}


class DevnetRpcServer:
    """JSON-RPC 1.0 over HTTP POST with basic auth, answering like Bitcoin Core's legacy mode."""

    def __init__(self, backend: DevnetBackend, *, host: str = "127.0.0.1", port: int = 0,
                 user: str = "devnet", password: str = "devnet") -> None:
        self.backend = backend
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self._auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    def node_config(self) -> NodeConfig:
        """How a worker process reaches this devnet: put it in its [chain] nodes with backend "bitcoind"."""
        return NodeConfig(url=self.url, user=self.user, password=self.password, name="devnet")

    async def start(self) -> DevnetRpcServer:
        app = web.Application(client_max_size=32 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        # Cancel a longpoll handler when its client goes away instead of holding it to the timeout.
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=2.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        log.info("devnet JSON-RPC on %s", self.url)
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            self.backend.release_longpolls()
            await self._runner.cleanup()
            self._runner = None

    async def _handle(self, request: web.Request) -> web.Response:
        supplied = request.headers.get("Authorization", "")
        if not hmac.compare_digest(supplied.encode(), self._auth.encode()):
            return web.Response(status=401, headers={"WWW-Authenticate": 'Basic realm="jsonrpc"'})
        if request.method != "POST":
            return web.Response(status=405, text="JSONRPC server handles only POST requests")
        try:
            payload = msgspec.json.decode(await request.read())
        except msgspec.DecodeError:
            return self._reply({"result": None, "error": {"code": -32700, "message": "Parse error"}, "id": None},
                               500)
        if isinstance(payload, list):
            replies = [await self._dispatch(item) for item in payload]
            return self._reply([reply for reply, _ in replies], 200)
        reply, status = await self._dispatch(payload)
        return self._reply(reply, status)

    @staticmethod
    def _reply(body: Any, status: int) -> web.Response:
        return web.Response(status=status, body=msgspec.json.encode(body) + b"\n",
                            content_type="application/json")

    async def _dispatch(self, request: Any) -> tuple[dict[str, Any], int]:
        if not isinstance(request, dict) or not isinstance(request.get("method"), str):
            error = {"code": -32600, "message": "Invalid Request object"}
            return {"result": None, "error": error, "id": None}, 400
        request_id = request.get("id")
        method = request["method"]
        params = request.get("params") or []
        if method not in _METHODS or not isinstance(params, list):
            code, message = ((RPC_METHOD_NOT_FOUND, "Method not found") if method not in _METHODS
                             else (-32602, "Params must be an array"))
            status = 404 if code == RPC_METHOD_NOT_FOUND else 500
            return {"result": None, "error": {"code": code, "message": message}, "id": request_id}, status
        try:
            result = await self._call(method, params)
        except RpcError as exc:
            return {"result": None, "error": {"code": exc.code, "message": exc.message}, "id": request_id}, 500
        except (TypeError, ValueError, IndexError) as exc:
            error = {"code": -3, "message": f"Wrong type or number of parameters: {exc}"}
            return {"result": None, "error": error, "id": request_id}, 500
        return {"result": result, "error": None, "id": request_id}, 200

    async def _call(self, method: str, params: list[Any]) -> Any:
        backend = self.backend
        if method == "getblocktemplate":
            options = params[0] if params else None
            if not isinstance(options, dict):
                raise RpcError("getblocktemplate needs a template_request object", -1)
            rules = options.get("rules") or []
            return await backend.getblocktemplate(rules, options.get("longpollid"))
        if method == "submitblock":
            return await backend.submitblock(str(params[0]))
        if method == "getblockhash":
            if not isinstance(params[0], int):
                raise RpcError("Wrong type passed: height must be an integer", -3)
            return await backend.getblockhash(params[0])
        if method == "getblockheader":
            return await backend.getblockheader(str(params[0]), bool(params[1]) if len(params) > 1 else True)
        if method == "getnetworkhashps":
            return await backend.getnetworkhashps(*params[:2])
        if method == "generatetoaddress":
            return await backend.generatetoaddress(int(params[0]), str(params[1]))
        return await getattr(backend, method)()


async def serve_devnet(config: DevnetConfig, *, network: str = "devnet", port: int | None = None
                       ) -> DevnetRpcServer:
    """Start a devnet behind its JSON-RPC server (config rpc_host/rpc_port/rpc_user/rpc_password)."""
    backend = DevnetBackend(open_devnet(config), network=network)
    server = DevnetRpcServer(backend, host=config.rpc_host, port=config.rpc_port if port is None else port,
                             user=config.rpc_user, password=config.rpc_password)
    return await server.start()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve the embedded devnet over Bitcoin Core JSON-RPC")
    parser.add_argument("--config", help="pool TOML config; its [chain.devnet] section is used")
    parser.add_argument("--host")
    parser.add_argument("--port", type=int)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from pool.config import load

    config = load(args.config).chain.devnet
    if args.host:
        config = msgspec.structs.replace(config, rpc_host=args.host)

    async def run() -> None:
        server = await serve_devnet(config, port=args.port)
        print(f"devnet JSON-RPC listening on {server.url} (height {server.backend.devnet.height})", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await server.stop()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())


if __name__ == "__main__":
    main()
