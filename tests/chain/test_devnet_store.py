"""The devnet chain kept across restarts: the same blocks after a restart, a torn last record cut
off, a record that does not extend the chain ends it; shared through the JSON-RPC server too."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from pool.chain.devnet import Devnet
from pool.chain.devnet_server import serve_devnet
from pool.chain.devnet_store import RECORD_SIZE, DevnetChainFile, open_devnet
from pool.chain.rpc import RpcClient
from pool.config.chain import DevnetConfig


def config(path: Path) -> DevnetConfig:
    # About one hash in 65,536 is a block: the genesis (made with nonce 0, not mined) misses the target,
    # as it does at the demo's difficulty.
    return DevnetConfig(chain_file=str(path), rpc_port=0, nbits="1f00ffff")


def fingerprint(devnet: Devnet) -> list[tuple[int, str, int]]:
    return [(b.height, b.hash.hex(), b.chainwork) for b in devnet.chain]


def test_a_restart_keeps_the_chain(tmp_path: Path) -> None:
    path = tmp_path / "var" / "chain.dat"
    first = open_devnet(config(path))
    for _ in range(5):
        first.generate()
    assert path.stat().st_size == 6 * RECORD_SIZE                # genesis and five blocks
    again = open_devnet(config(path))
    assert again.height == 5 and fingerprint(again) == fingerprint(first)
    assert again.header_json(again.tip) == first.header_json(first.tip)
    assert again.template()["previousblockhash"] == first.header_json(first.tip)["hash"]
    again.generate()                                             # it grows on from there
    assert open_devnet(config(path)).height == 6
    assert open_devnet(DevnetConfig()).height == 0               # no file: in memory, from genesis


def test_a_torn_record_is_cut_off(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "chain.dat"
    devnet = open_devnet(config(path))
    devnet.generate()
    devnet.generate()
    with open(path, "ab") as out:
        out.write(b"\x01" * 40)                                  # a crash in the middle of an append
    with caplog.at_level(logging.WARNING):
        restored = open_devnet(config(path))
    assert restored.height == 2 and fingerprint(restored) == fingerprint(devnet)
    assert path.stat().st_size == 3 * RECORD_SIZE and "torn last record" in caplog.text


def test_a_record_that_breaks_the_chain_ends_it(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "chain.dat"
    devnet = open_devnet(config(path))
    for _ in range(4):
        devnet.generate()
    data = bytearray(path.read_bytes())
    data[3 * RECORD_SIZE + 4] ^= 0xFF                             # block 3's prevhash no longer matches
    path.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING):
        restored = open_devnet(config(path))
    assert restored.height == 2 and fingerprint(restored) == fingerprint(devnet)[:3]
    assert "2 of 5 records do not extend the chain" in caplog.text
    assert len(DevnetChainFile(path).load()) == 3                 # the file now holds what was taken


async def test_the_rpc_server_keeps_its_chain(tmp_path: Path) -> None:
    path = tmp_path / "chain.dat"

    async def count_after(blocks: int) -> tuple[int, str]:
        server = await serve_devnet(config(path))
        try:
            for _ in range(blocks):
                server.backend.devnet.generate()
            client = RpcClient(server.url, user="devnet", password="devnet", name="devnet", timeout=10)
            try:
                info = await client.getblockchaininfo()
                return info["blocks"], await client.getbestblockhash()
            finally:
                await client.close()
        finally:
            await server.stop()

    height, tip = await count_after(3)
    assert height == 3
    assert await count_after(0) == (3, tip)
