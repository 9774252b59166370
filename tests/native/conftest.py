from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from pool import native
from tests.support import paths

VECTORS_DIR = paths.VECTORS


@pytest.fixture(scope="session")
def mainnet_vectors() -> dict:
    return json.loads((VECTORS_DIR / "mainnet_blocks.json").read_text())


@pytest.fixture(params=native.supported_backends())
def backend(request: pytest.FixtureRequest) -> Iterator[str]:
    """Runs the test once per SHA-256 back end this CPU supports."""
    previous = native.active_backend()
    native.use_backend(request.param)
    yield request.param
    native.use_backend(previous)
