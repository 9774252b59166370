"""Share-check throughput per back end against the hashlib reference and the SHA-256 ceiling.

The job is shaped like a mainnet one: 12 merkle branches, a ~250-byte coinbase.
"""

from __future__ import annotations

import os
import platform
import random
import statistics
import time
from typing import Any

from pool import native
from pool.native import reference
from pool.native.work import difficulty_to_target, target_bytes

BRANCHES = 12
COINB1_LEN = 60
COINB2_LEN = 178
EXTRANONCE1 = bytes.fromhex("0a0b0c0d")
EXTRANONCE2_SIZE = 8


def _job_inputs(seed: int = 1) -> tuple[bytes, bytes, bytes, bytes, int, int]:
    rng = random.Random(seed)
    return (rng.randbytes(COINB1_LEN), rng.randbytes(COINB2_LEN), rng.randbytes(32 * BRANCHES),
            rng.randbytes(32), 0x20000000, 0x17029A8A)


def _rate(check: Any, job: Any, n: int, target: bytes) -> float:
    en2 = bytes(EXTRANONCE2_SIZE)
    start = time.perf_counter()
    for nonce in range(n):
        check(job, EXTRANONCE1, en2, 0x679AC169, nonce, 0, 0x1FFFE000, target)
    return n / (time.perf_counter() - start)


def _median_rate(check: Any, job: Any, n: int, repeats: int, target: bytes) -> float:
    return statistics.median(_rate(check, job, n, target) for _ in range(repeats))


def _compression_rate(n: int, repeats: int) -> float:
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        native.bench_compress(n)
        rates.append(n / (time.perf_counter() - start))
    return statistics.median(rates)


def run(checks: int = 100_000, repeats: int = 7, out: Any = print) -> dict[str, Any]:
    inputs = _job_inputs()
    target = target_bytes(difficulty_to_target(1))
    figures: dict[str, Any] = {"machine": platform.machine(), "python": platform.python_version(),
                               "cpu_count": os.cpu_count(), "checks_per_repeat": checks, "repeats": repeats}
    reference_job = reference.ReferenceJob(*inputs)
    reference_rate = _median_rate(reference.check_share, reference_job, max(checks // 5, 1000), repeats, target)
    out(f"reference (hashlib)        {reference_rate:12,.0f} checks/s")
    best = native.best_backend()
    previous = native.active_backend()
    per_backend: dict[str, float] = {}
    try:
        for backend in native.supported_backends():
            native.use_backend(backend)
            job = native.prepare_job(*inputs)
            per_backend[backend] = _median_rate(native.check_share, job, checks, repeats, target)
            out(f"native {backend:<19} {per_backend[backend]:12,.0f} checks/s "
                f"({per_backend[backend] / reference_rate:.1f}x reference)")
        native.use_backend(best)
        compressions = native.prepare_job(*inputs).compressions(len(EXTRANONCE1) + EXTRANONCE2_SIZE)
        compress_rate = _compression_rate(checks * compressions // 4, repeats)
    finally:
        native.use_backend(previous)
    ceiling = compress_rate / compressions
    fraction = per_backend[best] / ceiling
    out(f"{best} raw compressions        {compress_rate:12,.0f} /s; {compressions} per check "
        f"-> ceiling {ceiling:,.0f} checks/s; native reaches {fraction:.0%} of it")
    figures.update(
        backend=best,
        native_checks_per_s=round(per_backend[best]),
        reference_checks_per_s=round(reference_rate),
        ratio_to_reference=round(per_backend[best] / reference_rate, 2),
        per_backend_checks_per_s={name: round(rate) for name, rate in per_backend.items()},
        compressions_per_s=round(compress_rate),
        compressions_per_check=compressions,
        ceiling_checks_per_s=round(ceiling),
        fraction_of_ceiling=round(fraction, 3),
    )
    return figures
