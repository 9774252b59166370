"""A connection the peer resets before the pool accepts it (a port probe, a miner giving up) has no
address: it is closed unserved, never counted against the per-IP limit nor tagged with the location of
''. Real sockets on loopback, the real location database."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import struct

import pytest

from pool.config.geo import GeoConfig
from pool.geo import GeoLocator
from pool.stratum.server import StratumServer
from tests.stratum.support import TestJobSource, config, make_job
from tests.support.waiting import wait_for

RESETS = 20


def reset_connection(port: int) -> None:
    """Connect and close at once with SO_LINGER 0: the kernel answers the handshake, then an RST."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.connect(("127.0.0.1", port))


async def test_connections_reset_before_the_accept_are_not_admitted(caplog: pytest.LogCaptureFixture) -> None:
    locator = GeoLocator(GeoConfig())
    tagged: list[str] = []

    def tag(ip: str) -> tuple[str, str, bool]:
        tagged.append(ip)
        return locator.tag_connection(ip)

    jobs = TestJobSource()
    jobs.publish(make_job("w1"))
    server = StratumServer(config(difficulty=1e-9), jobs, on_share=lambda share: None,
                           validate_account=lambda account: True, tag_connection=tag, node="test-node")
    await server.start()
    try:
        port = server.config.ports[0].port
        with caplog.at_level(logging.WARNING, logger="pool.geo"):
            for _ in range(RESETS):       # no await in between: the loop accepts them all after the resets
                reset_connection(port)
            reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 5)
            writer.write(json.dumps({"id": 1, "method": "mining.subscribe", "params": ["cgminer/4.11.1"]}).encode()
                         + b"\n")
            reply = json.loads(await asyncio.wait_for(reader.readline(), 5))
            assert reply["id"] == 1 and reply["error"] is None
            await wait_for(lambda: server.snapshot().connections == 1, 5, "the reset connections closed")
            writer.close()
        assert tagged == ["127.0.0.1"]    # the live connection only, accepted after the 20 resets
        assert not [r for r in caplog.records if "not an IP address" in r.getMessage()]
    finally:
        await server.stop(timeout=1.0)
        locator.close()
