"""The stratum ports' listening sockets, and the server's repeating timers (the housekeeping sweep,
the keep-alive notify), which run only while the ports listen."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from pool.config.stratum import PortConfig, StratumConfig

log = logging.getLogger("pool.stratum")

KEEP_TIMER_HANDLES = 8     # the newest handles kept for close(); a timer re-arms itself, so 1 per timer is live


class Listeners:
    __slots__ = ("_servers", "_timers", "config", "listening")

    def __init__(self, config: StratumConfig) -> None:
        self.config = config
        self.listening = False
        self._servers: list[asyncio.AbstractServer] = []
        self._timers: list[asyncio.TimerHandle] = []

    async def open(self, protocol: Callable[[PortConfig], asyncio.Protocol]) -> None:
        """Listen on every configured port (SO_REUSEPORT when `reuse_port`: worker processes share a
        port); `protocol(port)` makes each accepted connection's protocol. Port 0 (tests) is
        replaced by the port the OS chose."""
        loop = asyncio.get_running_loop()
        for port in self.config.ports:
            server = await loop.create_server(
                lambda port=port: protocol(port), host=port.host or None, port=port.port,
                reuse_port=self.config.reuse_port or None, backlog=self.config.backlog)
            self._servers.append(server)
            if port.port == 0:
                port.port = server.sockets[0].getsockname()[1]
        self.listening = True
        log.info("stratum listening on %s", ", ".join(f"{p.host}:{p.port}" for p in self.config.ports))

    def every(self, delay: float, callback: Callable[[], None]) -> None:
        """Run `callback` every `delay` seconds while listening; an exception is logged, not fatal."""
        loop = asyncio.get_running_loop()

        def run() -> None:
            if not self.listening:
                return
            try:
                callback()
            except Exception:
                log.exception("stratum timer %s failed", callback.__name__)
            self.every(delay, callback)

        self._timers = [h for h in self._timers if not h.cancelled()][-KEEP_TIMER_HANDLES:]
        self._timers.append(loop.call_later(delay, run))

    def close(self) -> None:
        """Stop accepting and stop the timers; open connections are the server's to close."""
        self.listening = False
        for handle in self._timers:
            handle.cancel()
        self._timers.clear()
        for server in self._servers:
            server.close()

    async def wait_closed(self) -> None:
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()
