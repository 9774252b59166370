"""A small real HTTP JSON-RPC server on 127.0.0.1 standing in for Bitcoin Core's wallet
(sendmany, listtransactions, getbalance), recording every call. No bitcoind runs here.

Replies follow Core's legacy JSON-RPC shape: {"result": ..., "error": null, "id": n}, errors with
HTTP 500 and {"code", "message"}. `drop_after_send` makes the next sendmany send the transaction
and then cut the connection without replying (the "did it go through?" case)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import aiohttp
from aiohttp import web

from pool.shares.payouts import WalletRpc, WalletRpcError


class WalletStandIn:
    def __init__(self, balance_btc: str = "100") -> None:
        self.calls: list[tuple[str, list[Any]]] = []
        self.transactions: list[dict[str, Any]] = []
        self.balance = Decimal(balance_btc)
        self.drop_after_send = False
        self.drop_before_send = False
        self.fail_next_send: tuple[int, str] | None = None
        # Awaited before a sendmany is carried out (a test holds a send while something else happens).
        self.before_send: Callable[[], Awaitable[None]] | None = None
        # Awaited after a sendmany went out, before its reply (a test kills the payer there).
        self.after_send: Callable[[], Awaitable[None]] | None = None
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/", self._handle)
        app.router.add_post("/wallet/{name}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def sends(self) -> list[list[Any]]:
        return [params for method, params in self.calls if method == "sendmany"]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        method, params, rid = body["method"], body.get("params", []), body.get("id")
        self.calls.append((method, params))
        if method == "sendmany":
            if self.before_send is not None:
                await self.before_send()
            if self.drop_before_send:
                self.drop_before_send = False
                request.transport.close()  # type: ignore[union-attr]
                raise ConnectionResetError("dropped before sending")
            if self.fail_next_send is not None:
                code, message = self.fail_next_send
                self.fail_next_send = None
                return web.json_response({"result": None, "error": {"code": code, "message": message},
                                          "id": rid}, status=500)
            txid = self._send(params)
            if self.after_send is not None:
                await self.after_send()
            if self.drop_after_send:
                self.drop_after_send = False
                request.transport.close()  # type: ignore[union-attr]
                raise ConnectionResetError("dropped after sending")
            return web.json_response({"result": txid, "error": None, "id": rid})
        if method == "listtransactions":
            count = params[1] if len(params) > 1 else 10
            return web.json_response({"result": self.transactions[-count:], "error": None, "id": rid})
        if method == "getbalance":
            return web.json_response({"result": float(self.balance), "error": None, "id": rid})
        return web.json_response({"result": None, "error": {"code": -32601, "message": "Method not found"},
                                  "id": rid}, status=404)

    def _send(self, params: list[Any]) -> str:
        _dummy, amounts, _minconf, comment = params[:4]
        total = sum(Decimal(str(v)) for v in amounts.values())
        if total > self.balance:
            raise web.HTTPInternalServerError(text=json.dumps({"result": None, "error": {
                "code": -6, "message": "Insufficient funds"}, "id": None}), content_type="application/json")
        self.balance -= total
        txid = hashlib.sha256(json.dumps(params, sort_keys=True).encode()
                              + len(self.transactions).to_bytes(4, "big")).hexdigest()
        for address, amount in amounts.items():
            self.transactions.append({"address": address, "category": "send", "amount": -float(amount),
                                      "txid": txid, "comment": comment, "confirmations": 0})
        return txid


def rpc_client(session: aiohttp.ClientSession, url: str) -> WalletRpc:
    counter = 0

    async def call(method: str, params: list[Any]) -> Any:
        nonlocal counter
        counter += 1
        payload = {"jsonrpc": "1.0", "id": counter, "method": method, "params": params}
        async with session.post(url, json=payload) as response:
            reply = await response.json(content_type=None)
        if reply.get("error"):
            raise WalletRpcError(reply["error"]["code"], reply["error"]["message"])
        return reply["result"]

    return call
