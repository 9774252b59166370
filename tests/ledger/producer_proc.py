"""Child process for the kill -9 test: a ledger fed at a steady rate until it is killed.

It publishes two counters in a shared file (mmap, so no syscall and nothing lost with the process):
`inflight` = index+1 of the record being handed to add(), set before the call, and `acked` = how
many add() calls have returned. After SIGKILL the parent knows exactly which records were accepted.
"""

from __future__ import annotations

import argparse
import asyncio
import mmap
import struct
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.ledger.support import make_ledger, record

COUNTERS = struct.Struct("<qq")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--mode", default="single")
    parser.add_argument("--journal", required=True)
    parser.add_argument("--counters", required=True)
    parser.add_argument("--rate", type=int, default=20000)
    args = parser.parse_args()
    with open(args.counters, "r+b") as fh:
        shared = mmap.mmap(fh.fileno(), COUNTERS.size)
    ledger = make_ledger(Path(args.journal), args.url, args.mode)
    await ledger.start()
    per_tick = max(1, args.rate // 100)
    i = 0
    loop = asyncio.get_running_loop()
    next_tick = loop.time()
    while True:
        for _ in range(per_tick):
            COUNTERS.pack_into(shared, 0, i + 1, i)
            ledger.add(record(i))
            i += 1
            COUNTERS.pack_into(shared, 0, i, i)
        next_tick += 0.01
        await asyncio.sleep(max(0.0, next_tick - loop.time()))


if __name__ == "__main__":
    asyncio.run(main())
