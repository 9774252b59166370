"""The drain loop over real sockets: a share write that fails does not cost the block from the same read."""

from __future__ import annotations

import asyncio
import errno
import json
import logging

import pytest

from pool.chain.types import BlockCandidate
from pool.native import check_share
from pool.stratum.events import ShareRecord
from pool.stratum.server import StratumServer
from pool.stratum.session_records import share_target
from tests.stratum.support import EASY_NBITS, TestJobSource, config, make_job, submit


class SignallingJobs(TestJobSource):
    def __init__(self) -> None:
        super().__init__()
        self.block_submitted = asyncio.Event()

    async def submit_block(self, candidate: BlockCandidate) -> None:
        await super().submit_block(candidate)
        self.block_submitted.set()


def full_disk(record: ShareRecord) -> None:
    raise OSError(errno.ENOSPC, "No space left on device")


async def test_block_candidate_is_submitted_when_the_share_write_fails(caplog: pytest.LogCaptureFixture) -> None:
    jobs = SignallingJobs()
    jobs.publish(make_job("w1", nbits=EASY_NBITS, height=200))
    server = StratumServer(config(difficulty=1e-12), jobs, on_share=full_disk,
                           validate_account=lambda account: True, node="test-node")
    await server.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.config.ports[0].port)
        writer.write(json.dumps({"id": 1, "method": "mining.subscribe", "params": ["cgminer/4.11.1"]}).encode()
                     + b"\n" + json.dumps({"id": 2, "method": "mining.authorize", "params": ["acct.w", "x"]}).encode()
                     + b"\n")
        en1 = b""
        while True:
            message = json.loads(await asyncio.wait_for(reader.readline(), 5))
            if message.get("id") == 1:
                en1 = bytes.fromhex(message["result"][1])
            if message.get("method") == "mining.notify":
                break
        job = jobs.current_job()
        assert job is not None
        en2 = b"\x00" * (job.extranonce_size - 4)
        low = share_target(1e-12)
        # The first nonce whose header is a block at the easy regtest bits: deterministic, always a block.
        # One read holds a plain share, then a block: the share's failing write comes first.
        judged = [(n, check_share(job.prepared, en1, en2, job.ntime, n, 0, 0, low)) for n in range(2000)]
        share_nonce = next(n for n, (_, meets, is_block) in judged if meets and not is_block)
        nonce = next(n for n, (_, meets, is_block) in judged if meets and is_block)
        with caplog.at_level(logging.ERROR, logger="pool.stratum"):
            writer.write(b"".join(json.dumps(submit("acct.w", "w1", en2, job.ntime, n, request_id=i)).encode()
                                  + b"\n" for i, n in ((6, share_nonce), (7, nonce))))
            await asyncio.wait_for(jobs.block_submitted.wait(), 5)
        candidate, header_ok = jobs.submitted[-1]
        assert header_ok and candidate.nonce == nonce and candidate.height == 200
        # Neither share could be made durable: neither is acknowledged as accepted.
        replies = {}
        while len(replies) < 2:
            message = json.loads(await asyncio.wait_for(reader.readline(), 5))
            if message.get("id") in (6, 7):
                replies[message["id"]] = message
        for reply in replies.values():
            assert reply["result"] is False and reply["error"][0] == 20
            assert reply["error"][1] == "Share not recorded"
        totals = server.snapshot()
        assert totals.share_write_failures == 2
        assert totals.accepted == 0 and totals.accepted_difficulty == 0.0
        assert totals.rejected() == {"not_recorded": 2}
        assert server.workers()[0]["rejected"] == {"not_recorded": 2} and server.workers()[0]["accepted"] == 0
        assert any("ShareRecord" in r.getMessage() and r.exc_info for r in caplog.records)
        writer.close()
    finally:
        await server.stop(timeout=1.0)
