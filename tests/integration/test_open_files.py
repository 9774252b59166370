"""`geostratum run` under an open-files limit too small for stratum.limits.max_connections says so at start,
naming the key and the limit, instead of failing accepts later ('Too many open files'). The real CLI in a
subprocess with RLIMIT_NOFILE = 1024, a real Redis, the devnet."""

from __future__ import annotations

import asyncio
import resource
import signal
import sys
from pathlib import Path

import pytest

from tests.integration.support import base_config, write_config

pytestmark = pytest.mark.timeout(120)
ROOT = Path(__file__).resolve().parents[2]


def small_limit() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))


async def test_a_limit_below_max_connections_is_said_at_start(redis_url: str, tmp_path: Path) -> None:
    config = write_config(tmp_path / "pool.toml", base_config(redis_url, tmp_path))   # max_connections 18,000
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pool.cli", "run", "--config", str(config), cwd=ROOT, preexec_fn=small_limit,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    assert proc.stderr is not None
    lines: list[str] = []
    try:
        while not lines or " running (worker 0)" not in lines[-1]:
            line = (await asyncio.wait_for(proc.stderr.readline(), 60)).decode()
            assert line, lines
            lines.append(line)
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 60)
    warned = [line for line in lines if "open files:" in line]
    assert len(warned) == 1, lines
    assert warned[0].rstrip().endswith(
        "WARNING geostratum: open files: this process may open 1024, but stratum.limits.max_connections = 18000 "
        "needs about 19000: accepting miners past ~24 fails with 'Too many open files'; raise the limit (ulimit -n, "
        "LimitNOFILE=, docker ulimits) or lower the key")
