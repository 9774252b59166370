"""New-block signals from bitcoind's ZMQ hashblock publisher (the fast path; longpoll and polling
in pool.chain.jobs are the fallbacks, since ZMQ delivery is not guaranteed)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import msgspec

from pool.aio import cancel_and_wait

log = logging.getLogger(__name__)

TOPIC = b"hashblock"

__all__ = ["TOPIC", "HashblockMessage", "SequenceTracker", "ZmqHashblockSubscriber", "parse_hashblock"]


class HashblockMessage(msgspec.Struct, frozen=True):
    block_hash: str  # display order: ZMQ sends the hash as RPC prints it
    sequence: int


def parse_hashblock(frames: list[bytes]) -> HashblockMessage:
    """topic | 32-byte hash (display order) | 4-byte little-endian sequence; ValueError otherwise."""
    if len(frames) != 3:
        raise ValueError(f"hashblock message has {len(frames)} frames, expected 3")
    topic, body, sequence = frames
    if topic != TOPIC:
        raise ValueError(f"unexpected topic {topic[:32]!r}")
    if len(body) != 32 or len(sequence) != 4:
        raise ValueError(f"hashblock frames of {len(body)} and {len(sequence)} bytes, expected 32 and 4")
    return HashblockMessage(body.hex(), int.from_bytes(sequence, "little"))


class SequenceTracker:
    """Counts messages lost between two sequence numbers (a publisher restart resets to 0)."""

    def __init__(self) -> None:
        self.last: int | None = None
        self.missed = 0

    def observe(self, sequence: int) -> int:
        missed = 0
        if self.last is not None and sequence != (self.last + 1) & 0xFFFFFFFF:
            # A sequence at or below the last one means the node restarted: nothing is known lost.
            missed = (sequence - self.last - 1) if sequence > self.last else 0
        self.last = sequence
        self.missed += missed
        return missed


class ZmqHashblockSubscriber:
    """SUB socket on one node's -zmqpubhashblock endpoint; calls on_block(hash, missed) per message."""

    def __init__(self, endpoint: str, on_block: Callable[[str, int], None], *, name: str = "") -> None:
        self.endpoint = endpoint
        self.name = name or endpoint
        self.on_block = on_block
        self.tracker = SequenceTracker()
        self.messages = 0
        self.malformed = 0
        self._task: asyncio.Task[None] | None = None
        self._socket = None

    async def start(self) -> None:
        import zmq
        import zmq.asyncio

        context = zmq.asyncio.Context.instance()
        sock = context.socket(zmq.SUB)
        sock.setsockopt(zmq.SUBSCRIBE, TOPIC)
        sock.setsockopt(zmq.RCVHWM, 0)  # never drop announcements locally
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.TCP_KEEPALIVE, 1)
        sock.connect(self.endpoint)
        self._socket = sock
        self._task = asyncio.create_task(self._run(), name=f"zmq-hashblock {self.name}")

    async def _run(self) -> None:
        assert self._socket is not None
        while True:
            frames = await self._socket.recv_multipart()
            try:
                message = parse_hashblock(frames)
            except ValueError as exc:
                self.malformed += 1
                log.warning("zmq %s: %s", self.name, exc)
                continue
            self.messages += 1
            missed = self.tracker.observe(message.sequence)
            if missed:
                log.warning("zmq %s: %d hashblock message(s) lost before sequence %d", self.name, missed,
                            message.sequence)
            try:
                self.on_block(message.block_hash, missed)
            except Exception:
                log.exception("zmq %s: on_block callback failed", self.name)

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None
        if self._socket is not None:
            self._socket.close(linger=0)
            self._socket = None
