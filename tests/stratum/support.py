"""Test utilities for the stratum server: a small but faithful JobSource, job builders from real
notify params (vectors, transcripts) or from a coinbase built here, and a share grinder."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from pool.chain.types import Job
from pool.config.stratum import LimitsConfig, PortConfig, StratumConfig
from pool.native import check_share
from pool.native.work import target_bytes
from pool.sim.jobs import (  # noqa: F401  (tests import them from here)
    HARD_NBITS,
    MemoryJobSource,
    bip34_height,
    job_from_notify,
    make_job,
)
from pool.stratum import messages as m
from pool.stratum.extranonce import ExtranonceAllocator
from pool.stratum.session import Session
from pool.stratum.session_records import share_target
from tests.support import paths

VECTORS = paths.VECTORS / "mainnet_blocks.json"
TRANSCRIPTS = paths.TRANSCRIPTS
EASY_NBITS = 0x207FFFFF          # regtest: about every other hash is a block
NOW = 1_760_000_100.0            # test clock, just after make_job's default ntime


class TestJobSource(MemoryJobSource):
    __test__ = False


def grind(job: Job, extranonce1: bytes, *, min_difficulty: float, max_difficulty: float | None = None,
          extranonce2: bytes | None = None, ntime: int | None = None, version_bits: int = 0,
          mask: int = 0, start: int = 0, not_block: bool = True, block: bool = False) -> tuple[bytes, int]:
    """First (extranonce2, nonce) whose hash reaches min_difficulty (and stays under max_difficulty);
    `block` asks for one that also solves the block, `not_block` for one that does not."""
    en2 = extranonce2 if extranonce2 is not None else b"\x00" * (job.extranonce_size - 4)
    low = share_target(min_difficulty)
    high = target_bytes(0) if max_difficulty is None else share_target(max_difficulty)
    high_int = int.from_bytes(high, "little")
    for nonce in range(start, start + 5_000_000):
        digest, meets, is_block = check_share(job.prepared, extranonce1, en2, ntime or job.ntime, nonce,
                                              version_bits, mask, low)
        if not meets or (not_block and is_block) or (block and not is_block):
            continue
        if max_difficulty is not None and int.from_bytes(digest, "little") <= high_int:
            continue
        return en2, nonce
    raise AssertionError("no share found")


def config(*, difficulty: float = 1.0, vardiff: bool = False, extranonce2_size: int = 8,
           min_difficulty: float = 1e-12, **overrides: Any) -> StratumConfig:
    limits = overrides.pop("limits", LimitsConfig())
    port_fields = {"port": 0, "host": "127.0.0.1", "start_difficulty": difficulty,
                   "min_difficulty": min_difficulty, "vardiff": vardiff, **overrides.pop("port", {})}
    port = PortConfig(**port_fields)
    cfg = StratumConfig(ports=[port], extranonce2_size=extranonce2_size, limits=limits, **overrides)
    cfg.validate()
    return cfg


def fixed_allocator(extranonce1_hex: str) -> ExtranonceAllocator:
    """An allocator whose first allocation is exactly the given extranonce1 (to replay real data)."""
    value = int(extranonce1_hex, 16)
    return ExtranonceAllocator(prefix=value >> 8, prefix_bits=24, start=(value - 1) & 0xFF)


def new_session(cfg: StratumConfig, jobs: TestJobSource, *, extranonce1: str | None = None, now: float = NOW,
                accounts: Callable[[str], bool] = lambda account: account != "bad",
                **kwargs: Any) -> Session:
    allocator = fixed_allocator(extranonce1) if extranonce1 else ExtranonceAllocator()
    return Session(config=cfg, port=cfg.ports[0], jobs=jobs, allocator=allocator, validate_account=accounts,
                   classify_firmware=lambda ua: ua.split("/")[0].lower() or "unknown", now=now, **kwargs)


def send(session: Session, obj: Any, now: float = NOW) -> list[dict[str, Any]]:
    """Feed one request (dict or raw line) and return every message written, decoded."""
    line = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
    session.receive_line(line, now)
    return take(session)


def take(session: Session) -> list[dict[str, Any]]:
    data = b"".join(session.out)
    session.out.clear()
    return [json.loads(line) for line in data.splitlines() if line]


def push(session: Session, job: Job, now: float = NOW, wire_id: str | None = None,
         clean: bool | None = None) -> list[dict[str, Any]]:
    """What the server's broadcast does for one connection."""
    clean = job.clean_jobs if clean is None else clean
    wire_id = wire_id or job.job_id
    notify = m.job_wire(job).notify(wire_id, job.ntime, clean)
    data = session.push_job(job, wire_id, job.ntime, clean, notify, now, {})
    return [json.loads(line) for line in (data or b"").splitlines() if line]


def submit(worker: str, job_id: str, en2: bytes, ntime: int, nonce: int, version_bits: int | None = None,
           request_id: Any = 4) -> dict[str, Any]:
    params: list[Any] = [worker, job_id, en2.hex(), f"{ntime:08x}", f"{nonce:08x}"]
    if version_bits is not None:
        params.append(f"{version_bits:08x}")
    return {"id": request_id, "method": "mining.submit", "params": params}


_LINE = re.compile(r"^\S+ \+\s*([\d.]+)s (conn\d+) (miner->pool|pool->miner) (.*)$")


def transcript(name: str) -> list[tuple[float, str, str, Any]]:
    """(seconds, connection, direction, decoded JSON) for each message line of a transcript."""
    rows = []
    for line in (TRANSCRIPTS / name).read_text().splitlines():
        match = _LINE.match(line)
        if match and match.group(4).startswith("{"):
            rows.append((float(match.group(1)), match.group(2), match.group(3), json.loads(match.group(4))))
    return rows


def vectors() -> list[dict[str, Any]]:
    return json.loads(VECTORS.read_text())["blocks"]
