"""Fuzz target: the admin API's request bodies, over a real socket to a real AdminServer. Any body
(the endpoint's own fields with values of any type, any JSON, bytes that are not JSON, deep nesting)
on any endpoint that takes one answers 2xx or a 4xx JSON error with a reason, never a 5xx."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import msgspec
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from tests.admin.conftest import ADMIN_TOKEN, CONFIG_TOML, ServerThread, make_config
from tests.admin.providers import InMemoryPool
from tests.admin.sample import populate

# (method, path, the body's field names)
ENDPOINTS = [
    ("POST", "/api/v1/bans", ["target", "duration_seconds", "reason"]),
    ("POST", "/api/v1/workers/alice.rig1/kick", ["reason"]),
    ("POST", "/api/v1/workers/alice.rig1/reconnect", ["host", "port", "wait_seconds"]),
    ("PUT", "/api/v1/ports/3333/difficulty", ["start_difficulty", "min_difficulty", "max_difficulty"]),
    ("PUT", "/api/v1/price", ["btc_usd"]),
    ("POST", "/api/v1/reload", []),
]
EXPECTED = {200, 201, 400, 404, 409, 413}

values = st.recursive(
    st.none() | st.booleans() | st.integers(-(1 << 70), 1 << 70) | st.floats(allow_nan=False) | st.text(max_size=30)
    | st.sampled_from(["10.0.0.1", "0.0.0.0/0", "::/0", "127.0.0.1/8", "1e999", "\x00", "a" * 300]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8)


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, str, bytes]:
    method, path, fields = draw(st.sampled_from(ENDPOINTS))
    shape = draw(st.integers(0, 4))
    if shape <= 1:        # the endpoint's fields, values of any type
        body = json.dumps(draw(st.fixed_dictionaries({}, optional={f: values for f in fields}))).encode()
    elif shape == 2:      # any JSON value, NaN and Infinity tokens included
        body = json.dumps(draw(values | st.floats())).encode()
    elif shape == 3:
        body = draw(st.binary(max_size=80))
    else:
        depth = draw(st.integers(1, 3000))
        body = b"[" * depth + b"]" * depth
    return method, path, body


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    config_file = Path(tmp_path_factory.mktemp("fuzz-admin")) / "pool.toml"
    config_file.write_text(CONFIG_TOML)
    with ServerThread(populate(InMemoryPool(config_path=config_file)), make_config()) as running:
        yield running


def call(url: str, method: str, path: str, body: bytes) -> tuple[int, bytes]:
    address = urlsplit(url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=10)
    try:
        connection.request(method, path, body=body, headers={
            "Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@given(requests())
@example(("POST", "/api/v1/bans", b"[" * 1000 + b"]" * 1000))     # a RecursionError and a 500 before
@example(("POST", "/api/v1/bans", b'{"target": "0.0.0.0/0"}'))
@example(("PUT", "/api/v1/ports/3333/difficulty", b'{"min_difficulty": 1e308, "max_difficulty": 1e308}'))
@example(("PUT", "/api/v1/price", b'{"btc_usd": Infinity}'))
def test_any_body_gets_a_2xx_or_a_4xx_with_a_reason(server: ServerThread, request: tuple[str, str, bytes]) -> None:
    method, path, body = request
    status, answer = call(server.url, method, path, body)
    assert status in EXPECTED, (status, answer[:300])
    payload: Any = msgspec.json.decode(answer)
    if status >= 400:
        assert payload["status"] == status and payload["reason"] and "Traceback" not in payload["reason"]
