"""Who may read a miner's page: public (admin.anonymous holds "miner") or with a read token; an
unknown account is a 404 page either way, and the JSON never holds an IP address."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from tests.admin.conftest import READ, make_config, start_admin
from tests.admin.providers import InMemoryPool


async def test_public_pages_need_no_token(pool_data: InMemoryPool) -> None:
    account = sorted(pool_data._worker_names())[0].split(".")[0]
    server = await start_admin(pool_data, make_config(anonymous=["miner"]))
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{server.url}/api/v1/accounts/{account}") as response:
                assert response.status == 200
                body = await response.json()
            assert body["summary"]["account"] == account and body["workers"]
            assert set(body["miner"]["workers"]) == {w["name"] for w in body["workers"]}
            assert "address" not in str(body["miner"])                   # no connection's IP address
            async with session.get(f"{server.url}/miner/{account}") as response:
                assert response.status == 200 and response.content_type == "text/html"
                assert "script-src 'self'" in response.headers["Content-Security-Policy"]
            # A miner pastes its user name: the page of its account.
            async with session.get(f"{server.url}/miner/{account}.rig9", allow_redirects=False) as response:
                assert response.status == 302 and response.headers["Location"] == f"/miner/{account}"
            async with session.get(f"{server.url}/miner/no-such-account") as response:
                assert response.status == 404 and "No such account" in await response.text()
            async with session.get(f"{server.url}/miner/%01bad") as response:
                assert response.status == 404
            # Only the miner group opened: the operator's views still need a token.
            async with session.get(f"{server.url}/api/v1/workers") as response:
                assert response.status == 401
    finally:
        await server.stop()


async def test_token_pages_answer_401_without_one(pool_data: InMemoryPool) -> None:
    account = sorted(pool_data._worker_names())[0].split(".")[0]
    server = await start_admin(pool_data, make_config())
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{server.url}/api/v1/accounts/{account}") as response:
                assert response.status == 401
            async with session.get(f"{server.url}/api/v1/accounts/{account}", headers=READ) as response:
                assert response.status == 200
            async with session.get(f"{server.url}/api/v1/accounts/nobody", headers=READ) as response:
                assert response.status == 404 and (await response.json())["error"] == "not_found"
            # The page itself loads (it asks for a token); it cannot tell a 404 without one.
            async with session.get(f"{server.url}/miner/{account}") as response:
                assert response.status == 200 and "read token" in await response.text()
    finally:
        await server.stop()


def test_stratum_urls_name_each_port_and_tls(tmp_path: Path) -> None:

    from pool.admin_wiring.miner import MinerReader
    from pool.config import from_dict
    from tests.stratum.test_tls import OPENSSL, make_cert

    if OPENSSL is None:
        pytest.skip("openssl is not installed")
    cert, key = make_cert(tmp_path)
    config = from_dict({"stratum": {"ports": [
        {"port": 3333}, {"port": 3443, "tls": True, "tls_cert_file": str(cert), "tls_key_file": str(key)}]}})
    reader = MinerReader(config, None, None, None)  # type: ignore[arg-type]
    assert reader.stratum_urls("10.0.0.5") == ["stratum+tcp://10.0.0.5:3333", "stratum+ssl://10.0.0.5:3443"]
    assert reader.stratum_urls("::1") == ["stratum+tcp://[::1]:3333", "stratum+ssl://[::1]:3443"]
    config.admin.public_stratum_host = "pool.example"
    assert reader.stratum_urls("10.0.0.5")[1] == "stratum+ssl://pool.example:3443"
