"""Integration fixtures: miners are collected so a failing test still reaps their tasks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from tests.integration.support import Miner


class Fleet(list[Miner]):
    def add(self, miner: Miner) -> Miner:
        self.append(miner)
        return miner.start()


@pytest.fixture
async def fleet() -> AsyncIterator[Fleet]:
    miners = Fleet()
    yield miners
    for miner in miners:
        miner._stop.set()
    await asyncio.gather(*(m.task for m in miners if m.task is not None), return_exceptions=True)
