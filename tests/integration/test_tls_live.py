"""A TLS port on a live pool (devnet): a miner over TLS is served, a renewed certificate is taken by
POST /api/v1/reload while that miner stays connected, and the miner page names stratum+ssl://."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.support import ADMIN, add_tls_port, admin_api, base_config, running_pool, write_config
from tests.stratum.test_tls import OPENSSL, make_cert, tls_connect

pytestmark = [pytest.mark.timeout(120),
              pytest.mark.skipif(OPENSSL is None, reason="openssl is not installed (apt-get install -y openssl)")]


async def test_tls_port_reload_keeps_the_miner(redis_url: str, tmp_path: Path) -> None:
    cert, key = make_cert(tmp_path / "certs")
    data = base_config(redis_url, tmp_path)
    add_tls_port(data, cert, key)
    config_path = write_config(tmp_path / "pool.toml", data)
    async with running_pool(config_path) as app, admin_api(app) as api:
        assert app.server is not None
        tls_port = app.server.config.ports[1].port
        miner = await tls_connect(tls_port, cert)
        await miner.handshake("alice.tls")
        before = miner.writer.get_extra_info("ssl_object").getpeercert(binary_form=True)

        renewed, renewed_key = make_cert(tmp_path / "renewed", "renewed")
        cert.write_bytes(renewed.read_bytes())
        key.write_bytes(renewed_key.read_bytes())
        status, result = await api.call("POST", "/api/v1/reload", ADMIN)
        assert status == 200 and result["ok"], result
        assert "stratum.ports[1].tls_cert_file" in result["applied"]

        fresh = await tls_connect(tls_port, renewed)
        await fresh.handshake("alice.tls2")
        assert fresh.writer.get_extra_info("ssl_object").getpeercert(binary_form=True) != before
        # The miner connected before the reload is still served over its own session.
        await miner.send({"id": 5, "method": "mining.submit", "params": ["alice.tls", "nojob", "00", "0", "0"]})
        reply = await miner.until(lambda m: m.get("id") == 5, timeout=10)
        assert reply["result"] is not True and reply["error"]

        account = await api.get("/api/v1/accounts/alice")
        assert f"stratum+ssl://127.0.0.1:{tls_port}" in account["miner"]["stratum_urls"]
        miner.close()
        fresh.close()
