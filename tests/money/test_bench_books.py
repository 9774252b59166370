"""benchmarks/bench_books.py still measures what it claims (a small run; figures checked for presence, never speed)."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


async def test_bench_books_small_run_reports_every_figure(empty_dsn: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(ROOT / "benchmarks" / "bench_books.py"), "--accounts", "300", "--repeats", "2",
        "--dsn", empty_dsn, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, out.decode()
    result = json.loads(out.decode().strip().splitlines()[-1].removeprefix("RESULT "))
    assert result["accounts"] == 300
    for key in ("pplns_split_s", "credit_block_s", "plain_insert_s", "balances_query_s", "plain_read_s",
                "credit_vs_plain_insert", "balances_vs_plain_read"):
        assert result[key] > 0, key
