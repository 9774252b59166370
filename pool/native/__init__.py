"""SHA-256d share validation: the native (Cython + C) check and its pure-Python reference.

The back end is chosen at import from the CPU (SHA-NI, ARMv8 SHA2, portable C);
GEOSTRATUM_SHA256_BACKEND=portable|sha-ni|armv8 forces one.
"""

from __future__ import annotations

import os

from pool.native import reference
from pool.native._sha256d import (
    PreparedJob,
    active_backend,
    backend_names,
    bench_compress,
    best_backend,
    check_share,
    sha256,
    sha256d,
    supported_backends,
    use_backend,
)

BACKEND_ENV = "GEOSTRATUM_SHA256_BACKEND"

ShareCheck = tuple[bytes, bool, bool]


def prepare_job(
    coinb1: bytes, coinb2: bytes, merkle_branches: bytes, prevhash: bytes, version: int, nbits: int
) -> PreparedJob:
    return PreparedJob(coinb1, coinb2, merkle_branches, prevhash, version, nbits)


def _select_initial_backend() -> None:
    forced = os.environ.get(BACKEND_ENV, "").strip()
    use_backend(forced if forced and forced != "auto" else best_backend())


_select_initial_backend()

__all__ = [
    "BACKEND_ENV",
    "PreparedJob",
    "ShareCheck",
    "active_backend",
    "backend_names",
    "bench_compress",
    "best_backend",
    "check_share",
    "prepare_job",
    "reference",
    "sha256",
    "sha256d",
    "supported_backends",
    "use_backend",
]
