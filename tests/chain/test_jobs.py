"""JobManager end to end on the devnet: in one process, and over the devnet's JSON-RPC server."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import msgspec
import pytest
import zmq
import zmq.asyncio

from pool.bitcoin.address import address_to_script
from pool.bitcoin.encoding import ByteReader, internal_to_display
from pool.chain.devnet import Devnet
from pool.chain.devnet_server import DevnetBackend, DevnetRpcServer
from pool.chain.jobs import DEVNET_BURN_SCRIPT, JobManager
from pool.chain.rpc import RpcAuthError, RpcClient, RpcError, RpcMethodNotFoundError
from pool.chain.tx import parse_transaction
from pool.chain.types import BlockResult, Job
from pool.chain.watch import SequenceTracker, ZmqHashblockSubscriber, parse_hashblock
from pool.config import ConfigError, from_dict
from pool.config.chain import ChainConfig, DevnetConfig, NodeConfig
from pool.native import check_share
from tests.chain.mining import MAX_TARGET_BYTES, mine_candidate
from tests.support import paths

ALICE = "bcrt1qyq5ygr4caxu0jec7dvlqx3hq7p5jl2zykefnf5"
BOB = "mipcBbFg9gMiCh81Kj8tqqdgoZub1ZJRfn"


def fast_config(**overrides) -> ChainConfig:
    base = {"poll_interval": 0.05, "template_refresh_interval": 30.0, "startup_timeout": 5.0,
            "confirm_delay": 0.0, "devnet": DevnetConfig(txs_per_block=4, tx_interval=0)}
    base.update(overrides)
    return ChainConfig(**base)


async def wait_for(predicate, timeout: float = 3.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


def coinbase_outputs(job: Job) -> list[tuple[int, bytes]]:
    tx = parse_transaction(ByteReader(job.coinb1 + bytes(job.extranonce_size) + job.coinb2))
    return [(o.value, o.script) for o in tx.outputs]


@pytest.fixture
async def manager() -> AsyncIterator[JobManager]:
    results: list[BlockResult] = []
    jm = JobManager.from_config(fast_config(pool_address=ALICE), job_epoch=0xABCD,
                                on_block_result=results.append)
    jm.results = results  # type: ignore[attr-defined]
    assert await jm.start()
    yield jm
    await jm.stop()


async def test_first_job_pays_the_pool_address(manager) -> None:
    job = manager.current_job()
    assert job is not None and job.height == 1 and job.clean_jobs
    assert job.job_id.startswith("abcd")
    assert manager.lookup(job.job_id) is job
    outputs = coinbase_outputs(job)
    assert outputs[0][1] == address_to_script(ALICE, "devnet")
    assert outputs[-1][1][:6].hex() == "6a24aa21a9ed"
    assert job.prepared is not None and job.version == 0x20000000
    figures = manager.snapshot()
    assert figures.ready and figures.height == 1 and figures.template_tx_count == 4
    msgspec.json.encode(figures)  # the admin API can serve it as is


async def test_a_block_found_elsewhere_gives_a_clean_job(manager) -> None:
    calls: list[bool] = []
    manager.add_listener(calls.append)
    old = manager.current_job()
    manager.devnet.generate()  # another miner's block
    await wait_for(lambda: True in calls)
    new = manager.current_job()
    assert new.height == old.height + 1 and new.clean_jobs and new.prevhash != old.prevhash
    assert manager.is_stale(old) and not manager.is_stale(new)
    assert manager.lookup(old.job_id) is old  # still in the grace list
    assert manager.snapshot().new_block_to_job_ms >= 0


async def test_a_mined_block_is_submitted_recorded_and_followed_by_new_work(manager) -> None:
    calls: list[bool] = []
    manager.add_listener(calls.append)
    job = manager.current_job()
    candidate = mine_candidate(job)
    await manager.submit_block(candidate)
    [result] = manager.results
    assert result.accepted and result.confirmed and result.error == ""
    assert result.node_results == {"devnet": "accepted"}
    assert result.block_hash == internal_to_display(manager.devnet.tip.hash)
    assert result.height == 1 and result.worker == "rig1" and result.account == "alice"
    assert result.coinbase_value == sum(v for v, _ in coinbase_outputs(job))
    await wait_for(lambda: True in calls)
    assert manager.current_job().height == 2
    # The same candidate again: the node already has it.
    await manager.submit_block(candidate)
    assert manager.results[-1].node_results == {"devnet": "duplicate"} and manager.results[-1].accepted
    assert manager.snapshot().blocks_accepted == 2
    assert result.refusal == "" and manager.results[-1].refusal == ""


async def test_a_forged_candidate_is_recorded_as_an_error_not_raised(manager) -> None:
    job = manager.current_job()
    candidate = msgspec.structs.replace(mine_candidate(job), nonce=0xFFFFFFFF)
    await manager.submit_block(candidate)
    assert not manager.results[-1].accepted and "rebuilt header" in manager.results[-1].error
    assert manager.results[-1].refusal == manager.results[-1].error
    unknown = msgspec.structs.replace(candidate, job_id="nope")
    await manager.submit_block(unknown)
    assert "no longer known" in manager.results[-1].error
    assert manager.devnet.height == 0


def test_a_refusal_is_the_nodes_word_or_each_nodes() -> None:
    refused = BlockResult(height=1, block_hash="ab" * 32, prevhash="00" * 32, worker="alice.rig", account="alice",
                          payout_key="", accepted=False, confirmed=False, node_results={"core": "bad-txnmrklroot"},
                          found_at=1.0, submitted_at=1.0, coinbase_value=1)
    assert refused.refusal == "bad-txnmrklroot"
    both = msgspec.structs.replace(refused, node_results={"b": "inconclusive",
                                                          "a": "rpc-error -22: Block decode failed"})
    assert both.refusal == "a: rpc-error -22: Block decode failed; b: inconclusive"
    assert msgspec.structs.replace(both, node_results={"a": "high-hash", "b": "high-hash"}).refusal == "high-hash"


async def test_solo_jobs_pay_the_finder() -> None:
    jm = JobManager.from_config(fast_config(mode="solo", pool_address=BOB, solo_fee_percent=1.5))
    assert await jm.start()
    try:
        alice_job = jm.current_job(ALICE)
        assert jm.current_job(ALICE) is alice_job  # cached per template
        outputs = coinbase_outputs(alice_job)
        total = sum(v for v, _ in outputs[:-1])
        assert outputs[0][1] == address_to_script(ALICE, "devnet")
        assert outputs[1] == (total * 15_000 // 1_000_000, address_to_script(BOB, "devnet"))
        assert alice_job.payout_key == ALICE
        bob_job = jm.current_job(BOB)
        assert coinbase_outputs(bob_job)[0][1] == address_to_script(BOB, "devnet")
        assert bob_job.job_id != alice_job.job_id and jm.lookup(bob_job.job_id) is bob_job
        assert jm.current_job("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4") is None  # mainnet address
        results: list[BlockResult] = []
        jm.add_block_listener(results.append)
        await jm.submit_block(mine_candidate(alice_job, worker="alice.rig"))
        assert results[0].accepted and results[0].payout_key == ALICE
        block = jm.devnet.tip
        assert block.height == 1
        await wait_for(lambda: jm.current_job(ALICE) is not alice_job)
        assert jm.current_job(ALICE).height == 2
    finally:
        await jm.stop()


async def test_devnet_without_pool_address_pays_the_burn_script() -> None:
    jm = JobManager.from_config(fast_config())
    assert await jm.start()
    try:
        assert coinbase_outputs(jm.current_job())[0][1] == DEVNET_BURN_SCRIPT
    finally:
        await jm.stop()


async def test_workers_share_one_devnet_over_json_rpc() -> None:
    config = DevnetConfig(txs_per_block=3, tx_interval=0)
    server = await DevnetRpcServer(DevnetBackend(Devnet(config)), port=0, user="u", password="p").start()
    chain = fast_config(backend="bitcoind", poll_interval=0, pool_address=ALICE,
                        nodes=[server.node_config()])
    assert server.node_config() == NodeConfig(url=server.url, user="u", password="p", name="devnet")
    workers = [JobManager.from_config(chain, job_epoch=i) for i in range(2)]
    client = RpcClient(server.url, user="u", password="p")
    try:
        for worker in workers:
            assert await worker.start()
        cleans = [[] for _ in workers]
        for worker, calls in zip(workers, cleans, strict=True):
            worker.add_listener(calls.append)
        # A block from outside reaches both workers through their longpolls (polling is off).
        [block_hash] = await client.call("generatetoaddress", [1, ALICE])
        await wait_for(lambda: all(True in c for c in cleans))
        assert all(w.current_job().height == 2 for w in workers)
        assert workers[0].current_job().prevhash == workers[1].current_job().prevhash
        # Worker 1 mines a block; worker 0 learns about it from the shared chain.
        results: list[BlockResult] = []
        workers[1].add_block_listener(results.append)
        await workers[1].submit_block(mine_candidate(workers[1].current_job()))
        assert results[0].accepted and results[0].confirmed
        await wait_for(lambda: workers[0].current_job().height == 3)
        assert await client.getblockhash(2) == results[0].block_hash
        assert (await client.getblockheader(block_hash))["height"] == 1
        assert len(await client.getblockheader(block_hash, False)) == 160
        info = await client.getmininginfo()
        assert info["blocks"] == 2 and info["difficulty"] == pytest.approx(4.656542373906925e-10)
        assert await client.getdifficulty() == info["difficulty"]
        assert await client.call("getnetworkhashps") >= 0
        assert (await client.getblockchaininfo())["bestblockhash"] == results[0].block_hash
        with pytest.raises(RpcError) as info_error:
            await client.submitblock("00ff")
        assert info_error.value.code == -22
        with pytest.raises(RpcMethodNotFoundError):
            await client.call("getfoo")
        with pytest.raises(RpcError) as info_error:
            await client.getblockhash(99)
        assert info_error.value.code == -8
    finally:
        for worker in workers:
            await worker.stop()
        await client.close()
        wrong = RpcClient(server.url, user="u", password="x")
        with pytest.raises(RpcAuthError):
            await wrong.getblockcount()
        await wrong.close()
        await server.stop()


# --- ZMQ hashblock --------------------------------------------------------------------------------------

ZMQ_FIXTURE = json.loads((paths.FIXTURES / "zmq_hashblock.json").read_text())


def test_recorded_hashblock_messages_parse() -> None:
    for message in ZMQ_FIXTURE["messages"]:
        parsed = parse_hashblock([bytes.fromhex(f) for f in message["frames_hex"]])
        assert parsed.block_hash == message["body_hex"] and parsed.sequence == message["sequence"]
    with pytest.raises(ValueError):
        parse_hashblock([b"hashblock", b"\x00" * 31, b"\x00" * 4])
    with pytest.raises(ValueError):
        parse_hashblock([b"rawtx", b"\x00" * 32, b"\x00" * 4])


def test_sequence_gaps_are_counted() -> None:
    tracker = SequenceTracker()
    assert [tracker.observe(s) for s in (0, 1, 4, 5, 0)] == [0, 0, 2, 0, 0]
    assert tracker.missed == 2


async def test_zmq_subscriber_receives_real_publisher_messages() -> None:
    context = zmq.asyncio.Context.instance()
    pub = context.socket(zmq.PUB)
    port = pub.bind_to_random_port("tcp://127.0.0.1")
    seen: list[tuple[str, int]] = []
    sub = ZmqHashblockSubscriber(f"tcp://127.0.0.1:{port}", lambda h, missed: seen.append((h, missed)))
    await sub.start()
    try:
        frames = [[bytes.fromhex(f) for f in m["frames_hex"]] for m in ZMQ_FIXTURE["messages"]]
        # Slow-joiner: publish until the subscription has propagated.
        for _ in range(200):
            await pub.send_multipart(frames[0])
            await asyncio.sleep(0.01)
            if seen:
                break
        lost = [frames[1][0], frames[1][1], (5).to_bytes(4, "little")]
        await pub.send_multipart(lost)
        await wait_for(lambda: len(seen) >= 2 and seen[-1][0] == ZMQ_FIXTURE["expected_block_hashes"][1])
        assert seen[0][0] == ZMQ_FIXTURE["expected_block_hashes"][0]
        assert seen[-1][1] == 4 and sub.tracker.last == 5
    finally:
        await sub.stop()
        pub.close(linger=0)


# --- config ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("section", "key"), [
    ({"backend": "electrum"}, "chain.backend"),
    ({"network": "mainnet"}, "chain.pool_address"),
    ({"network": "mainnet", "pool_address": ALICE}, "chain.pool_address"),
    ({"backend": "bitcoind"}, "chain.nodes"),
    ({"mode": "pplns"}, "chain.mode"),
    ({"nodes": [{"url": "127.0.0.1:8332"}]}, "chain.nodes[0].url"),
    ({"devnet": {"nbits": "20ffffff"}}, "chain.devnet.nbits"),
    ({"solo_fee_percent": 100}, "chain.solo_fee_percent"),
    ({"rpc_timeout": 0}, "chain.rpc_timeout"),
])
def test_bad_chain_config_names_the_key(section, key) -> None:
    with pytest.raises(ConfigError) as info:
        from_dict({"chain": section})
    assert info.value.key == key


async def test_periodic_refresh_sends_work_without_clean_jobs() -> None:
    jm = JobManager.from_config(fast_config(template_refresh_interval=0.05, poll_interval=0))
    assert await jm.start()
    try:
        first = jm.current_job()
        calls: list[bool] = []
        jm.add_listener(calls.append)
        await wait_for(lambda: len(calls) >= 2)
        assert calls[:2] == [False, False]
        refreshed = jm.current_job()
        assert refreshed.job_id != first.job_id and not refreshed.clean_jobs
        assert refreshed.prevhash == first.prevhash and not jm.is_stale(first)
    finally:
        await jm.stop()


async def test_regtest_bit_28_stays_out_of_the_job_version_and_rolled_blocks_are_accepted() -> None:
    jm = JobManager.from_config(fast_config(devnet=DevnetConfig(version=0x30000000, tx_interval=0)))
    assert await jm.start()
    try:
        job = jm.current_job()
        assert job.version == 0x20000000
        results: list[BlockResult] = []
        jm.add_block_listener(results.append)
        rolled = mine_candidate(job)
        for nonce in range(100_000):
            digest, _, is_block = check_share(job.prepared, rolled.extranonce1, rolled.extranonce2, job.ntime,
                                              nonce, 0x0001E000, 0x1FFFE000, MAX_TARGET_BYTES)
            if is_block:
                break
        candidate = msgspec.structs.replace(rolled, nonce=nonce, version=0x2001E000, header_hash=digest)
        await jm.submit_block(candidate)
        assert results[0].accepted, results[0]
        assert jm.devnet.tip.header.version == 0x2001E000
    finally:
        await jm.stop()
