"""`geostratum simulate` says what its fleet really hashed (the truth: hashes computed over the last
minute) beside the pool's own 1m estimate, and stops on Ctrl-C after its miners' last answers. The real
CLI in a subprocess against a real pool on the devnet and its admin API."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import sys
from pathlib import Path

import pytest

from pool.sim.fleet import HashCounter, format_hashrate
from tests.integration.support import READ_TOKEN, base_config, flushed, running_pool, stratum_port, write_config

pytestmark = pytest.mark.timeout(120)
ROOT = Path(__file__).resolve().parents[2]
HASHRATE = 40_000.0
PROGRESS = re.compile(r" block candidates \| hashrate: fleet ([0-9.]+) (k?)H/s \(counted, last (\d+) s\), (.*)$")


def test_the_truth_is_the_hashes_of_the_last_minute() -> None:
    counter = HashCounter(started=100.0, window=60.0)
    assert counter.add(110.0, 10_000) == (1000.0, 10.0)
    for t in range(120, 170, 10):                     # 1000 H/s for 70 s
        counter.add(float(t), (t - 100) * 1000)
    assert counter.add(170.0, 70_000) == (1000.0, 60.0)
    rate, covered = counter.add(180.0, 70_000)        # then 10 s with no hash at all
    assert covered == 60.0 and rate == pytest.approx(50_000 / 60)
    assert [format_hashrate(r) for r in (0.0, 999.0, 999.7, 1234.0, 392_000.0, 999_600.0, 1.5e15, 6.5e20, 3e21)] == [
        "0 H/s", "999 H/s", "1 kH/s", "1.23 kH/s", "392 kH/s", "1 MH/s", "1.5 PH/s", "650 EH/s", "3,000 EH/s"]


async def test_progress_lines_put_the_fleets_hashrate_beside_the_pools(redis_url: str, tmp_path: Path) -> None:
    async with running_pool(write_config(tmp_path / "pool.toml", base_config(redis_url, tmp_path))) as app:
        assert app.admin is not None and app.ledger is not None
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "pool.cli", "simulate", "--port", str(stratum_port(app)), "--miners", "2",
            "--hashrate", str(HASHRATE), "--countries", "DE=1", "--report-every", "1", "--pool-api", app.admin.url,
            cwd=ROOT, env=dict(os.environ, GEOSTRATUM_READ_TOKEN=READ_TOKEN),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        assert proc.stdout is not None
        seen: list[str] = []
        try:
            while not seen or "1m estimate" not in seen[-1]:      # warming up first, then a figure
                line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode().strip()
                assert line, f"simulate ended early: {seen}"
                seen.append(line)
            proc.send_signal(signal.SIGINT)
            rest, err = await asyncio.wait_for(proc.communicate(), 30)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        assert proc.returncode == 0, err.decode()[-2000:]
        progress = [PROGRESS.search(line) for line in seen]
        assert all(progress), seen
        rates = [float(m.group(1)) * (1000 if m.group(2) else 1) for m in progress if m is not None]
        # Paced by sleeps: never above what was set (one chunk of 512 hashes per miner of slack); the first
        # line may come before any hash (connect and authorize take their time on a loaded machine).
        assert all(0 <= rate <= 2 * (HASHRATE + 512) for rate in rates) and rates[-1] > 0, rates
        said = re.search(r"pool ([0-9.]+) (k?)H/s \(1m estimate over (\d+) s, 95 % ([0-9.]+) "
                         r"(k?)H/s to ([0-9.]+) (k?)H/s, (\d+) shares\)$", seen[-1])
        assert said, seen[-1]
        value, low, high = (float(said.group(i)) * (1000 if said.group(i + 1) else 1) for i in (1, 4, 6))
        assert low <= value <= high and int(said.group(8)) >= 30     # a figure only from 30 shares on
        # (an API answer slower than simulate's 3 s bound is said as such: a loaded machine, not a defect)
        assert all(re.match(r"pool (warming up \(1m window, \d+ shares so far\)$|[0-9.]+ k?H/s \(1m estimate|"
                            r"API gave no figure \(TimeoutError)", m.group(4)) for m in progress if m), seen
        done = re.search(r"fleet done: 2 miners, (\d+) accepted, 0 rejected, \d+ block candidates; hashed "
                         r"[0-9.]+ k?H/s on average over \d+ s \(set 80 kH/s\)", rest.decode())
        assert done, rest.decode()
        await flushed(app)
        shares, _ = await app.ledger.reader.totals()
        assert shares >= int(done.group(1)) > 0       # Ctrl-C waited for the answers it counted


async def test_miners_that_cannot_connect_are_one_line_and_a_failure() -> None:
    with socket.socket() as sock:          # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pool.cli", "simulate", "--port", str(port), "--miners", "5", "--duration", "5",
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    lines = out.decode().splitlines()
    assert proc.returncode == 1
    assert len(lines) == 2 and lines[0].startswith("5 miners (sim0.rig0, ...): ConnectionRefusedError: ")
    assert lines[1].startswith("fleet done: 5 miners, 0 accepted, 0 rejected, 0 block candidates; hashed 0 H/s")
    assert err.decode() == "simulate: 5 of 5 miners ended early (the lines above say why)\n"
