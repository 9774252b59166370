"""TLS Stratum ports over real sockets on 127.0.0.1, with self-signed certificates made here by the
openssl command: Python's ssl module and `openssl s_client` speak Stratum through them; a PROXY v2
header in clear before the TLS handshake; a certificate reload that keeps open connections; a
plain-text client on a TLS port, a TLS client on a plain port and a client that refuses the
certificate are closed with a log line while the server goes on."""

from __future__ import annotations

import asyncio
import logging
import shutil
import socket
import ssl
import subprocess
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from pool.config.errors import ConfigError
from pool.config.stratum import PortConfig, StratumConfig
from pool.sim.proxy_header import proxy_v2
from pool.stratum.events import ShareRecord
from pool.stratum.server import StratumServer
from tests.stratum.support import TestJobSource, config, grind, make_job, submit
from tests.stratum.test_server_sockets import Client, connect
from tests.support.waiting import wait_for

OPENSSL = shutil.which("openssl")
pytestmark = pytest.mark.skipif(OPENSSL is None, reason="openssl is not installed (apt-get install -y openssl)")


def make_cert(folder: Path, name: str = "pool") -> tuple[Path, Path]:
    """A self-signed P-256 certificate for 127.0.0.1 and localhost (2 days)."""
    folder.mkdir(parents=True, exist_ok=True)
    cert, key = folder / f"{name}.crt", folder / f"{name}.key"
    assert OPENSSL is not None
    subprocess.run([OPENSSL, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", f"/CN={name}",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True, timeout=30)
    return cert, key


def client_context(cert: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(cert))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


class TlsPool:
    def __init__(self, server: StratumServer, jobs: TestJobSource, shares: list[ShareRecord]) -> None:
        self.server, self.jobs, self.shares = server, jobs, shares

    def port(self, index: int = 0) -> int:
        return self.server.config.ports[index].port


@pytest.fixture
def cert(tmp_path: Path) -> tuple[Path, Path]:
    return make_cert(tmp_path / "certs")


@pytest.fixture
async def tls_pool(cert: tuple[Path, Path]) -> AsyncIterator[Callable[..., Any]]:
    started: list[StratumServer] = []

    async def factory(**overrides: Any) -> TlsPool:
        base = config(difficulty=1e-9)
        tls_port = PortConfig(port=0, host="127.0.0.1", start_difficulty=1e-9, min_difficulty=1e-12, vardiff=False,
                              tls=True, tls_cert_file=str(cert[0]), tls_key_file=str(cert[1]))
        cfg = StratumConfig(ports=[tls_port, base.ports[0]], extranonce2_size=8, limits=base.limits, **overrides)
        cfg.validate()
        jobs = TestJobSource()
        jobs.publish(make_job("w1"))
        shares: list[ShareRecord] = []
        server = StratumServer(cfg, jobs, on_share=shares.append, validate_account=lambda a: True, node="t")
        await server.start()
        started.append(server)
        return TlsPool(server, jobs, shares)

    yield factory
    for server in started:
        await server.stop(timeout=1.0)


def tls_pool_cert(pool: TlsPool) -> Path:
    return Path(pool.server.config.ports[0].tls_cert_file)


async def tls_connect(port: int, cert: Path, **kw: Any) -> Client:
    client = await connect(port, ssl=client_context(cert), server_hostname="127.0.0.1", **kw)
    return client


async def test_stratum_over_tls_with_python_ssl(tls_pool: Any, cert: tuple[Path, Path]) -> None:
    pool = await tls_pool()
    client = await tls_connect(pool.port(), cert[0])
    tls = client.writer.get_extra_info("ssl_object")
    assert tls.version() in ("TLSv1.2", "TLSv1.3")
    en1 = await client.handshake("acct.tls")
    job = pool.jobs.current_job()
    en2, nonce = grind(job, en1, min_difficulty=1e-9)
    await client.send(submit("acct.tls", "w1", en2, job.ntime, nonce, request_id=9))
    assert await client.until(lambda m: m.get("id") == 9) == {"id": 9, "result": True, "error": None}
    assert pool.shares[-1].worker == "acct.tls"
    pool.jobs.publish(make_job("w2", height=900_001))        # fan-out reaches the TLS session too
    assert (await client.until(lambda m: m.get("method") == "mining.notify"))["params"][0] == "w2"
    client.close()


async def test_openssl_s_client_speaks_stratum(tls_pool: Any, cert: tuple[Path, Path]) -> None:
    pool = await tls_pool()
    assert OPENSSL is not None
    proc = await asyncio.create_subprocess_exec(
        OPENSSL, "s_client", "-connect", f"127.0.0.1:{pool.port()}", "-CAfile", str(cert[0]), "-verify_return_error",
        "-quiet", "-tls1_2", stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    try:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(b'{"id":1,"method":"mining.subscribe","params":["openssl/3"]}\n')
        await proc.stdin.drain()
        line = await asyncio.wait_for(proc.stdout.readline(), 10)
        assert b'"id":1' in line and b'"result"' in line and b'"error":null' in line
    finally:
        proc.kill()
        await proc.wait()


async def test_proxy_v2_header_in_clear_before_the_handshake(tls_pool: Any, cert: tuple[Path, Path]) -> None:
    pool = await tls_pool(trusted_proxies=["127.0.0.0/8"], proxy_header_required=True)
    port = pool.port()
    context = client_context(cert[0])

    def through_a_balancer() -> tuple[str, ssl.SSLSocket]:
        raw = socket.create_connection(("127.0.0.1", port), timeout=5)
        raw.sendall(proxy_v2("203.0.113.9", 40000, "127.0.0.1", port))
        tls = context.wrap_socket(raw, server_hostname="127.0.0.1")
        tls.sendall(b'{"id":1,"method":"mining.subscribe","params":["x"]}\n'
                    b'{"id":2,"method":"mining.authorize","params":["acct.px","x"]}\n')
        data = b""
        while data.count(b"\n") < 2:
            data += tls.recv(4096)
        return data.decode(), tls

    answer, tls = await asyncio.to_thread(through_a_balancer)
    try:
        assert '"id":2' in answer
        rows = pool.server.workers()
        assert [(r["worker"], r["peer"]) for r in rows] == [("acct.px", "203.0.113.9")]   # the miner's real address
    finally:
        tls.close()


async def test_plain_client_on_tls_port_and_tls_client_on_plain_port_are_closed(
        tls_pool: Any, cert: tuple[Path, Path], caplog: pytest.LogCaptureFixture) -> None:
    pool = await tls_pool()
    with caplog.at_level(logging.INFO, logger="pool.stratum"):
        plain = await connect(pool.port(0))
        await plain.send({"id": 1, "method": "mining.subscribe", "params": []})
        assert await plain.closed(5)
        with pytest.raises((ssl.SSLError, ConnectionResetError, asyncio.IncompleteReadError, OSError)):
            await asyncio.wait_for(tls_connect(pool.port(1), cert[0]), 5)     # TLS on the plain port
    text = caplog.text
    assert f"on TLS port {pool.port(0)}" in text and "plain-text client" in text
    assert f"a TLS handshake on plain-text port {pool.port(1)}" in text
    # The server goes on: a TLS client is served.
    client = await tls_connect(pool.port(0), cert[0])
    await client.handshake("acct.after")
    client.close()


async def test_a_client_that_refuses_the_certificate_is_closed(tls_pool: Any, tmp_path: Path,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    pool = await tls_pool()
    other, _ = make_cert(tmp_path / "other", "someone-else")
    with caplog.at_level(logging.INFO, logger="pool.stratum"):
        with pytest.raises(ssl.SSLCertVerificationError):
            await asyncio.wait_for(tls_connect(pool.port(), other), 5)
        # The client's alert ends the handshake on the server: closed with a log line naming it.
        await wait_for(lambda: f"on TLS port {pool.port()}" in caplog.text, 5, "the refused handshake's log line")
        await wait_for(lambda: pool.server.snapshot().connections == 0, 5, "the connection to close")
    # Either the client's alert (unknown CA) or its leaving mid-handshake is what the line says.
    assert "unknown ca" in caplog.text.lower() or "left during the handshake" in caplog.text
    client = await tls_connect(pool.port(), tls_pool_cert(pool))
    await client.handshake("acct.still")
    client.close()


async def test_certificate_reload_keeps_open_connections(tls_pool: Any, cert: tuple[Path, Path],
                                                         tmp_path: Path) -> None:
    pool = await tls_pool()
    first = await tls_connect(pool.port(), cert[0])
    await first.handshake("acct.old")
    old_der = first.writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    # A renewed certificate in the same files, then a reload (what SIGHUP and POST /reload do).
    renewed, renewed_key = make_cert(tmp_path / "renewed", "renewed")
    cert[0].write_bytes(renewed.read_bytes())
    cert[1].write_bytes(renewed_key.read_bytes())
    assert pool.server.reload_tls() == [pool.port()]
    second = await tls_connect(pool.port(), renewed)
    await second.handshake("acct.new")
    assert second.writer.get_extra_info("ssl_object").getpeercert(binary_form=True) != old_der
    # The connection made before the reload is still served (fan-out and a share).
    pool.jobs.publish(make_job("w9", height=900_009))
    assert (await first.until(lambda m: m.get("method") == "mining.notify"))["params"][0] == "w9"
    assert (await second.until(lambda m: m.get("method") == "mining.notify"))["params"][0] == "w9"
    # A broken file is refused and the certificate in use stays.
    cert[0].write_text("not a certificate")
    with pytest.raises(ConfigError, match=r"stratum.ports\[0\].tls_cert_file"):
        pool.server.reload_tls()
    third = await tls_connect(pool.port(), renewed)
    await third.handshake("acct.third")
    for client in (first, second, third):
        client.close()


def test_tls_config_errors_name_the_key(cert: tuple[Path, Path], tmp_path: Path) -> None:
    good = {"port": 0, "tls": True, "tls_cert_file": str(cert[0]), "tls_key_file": str(cert[1])}
    PortConfig(**good).validate("ports[0]")
    for change, key in [({"tls_cert_file": ""}, "ports[0].tls_cert_file"),
                        ({"tls_key_file": str(tmp_path / "missing.key")}, "ports[0].tls_key_file"),
                        ({"tls_cert_file": str(tmp_path / "missing.crt")}, "ports[0].tls_cert_file"),
                        ({"tls_key_file": str(cert[0])}, "ports[0].tls_cert_file")]:
        with pytest.raises(ConfigError) as error:
            PortConfig(**{**good, **change}).validate("ports[0]")
        assert error.value.key == key, (change, error.value)


async def test_a_client_close_notify_is_answered_and_the_connection_ends(tls_pool: Any,
                                                                        cert: tuple[Path, Path]) -> None:
    """A miner that closes its TLS session cleanly gets the server's close_notify back (its TLS stack
    does not wait out a shutdown timeout) and the pool drops the connection at once."""
    pool = await tls_pool()
    client = await tls_connect(pool.port(), cert[0])
    await client.handshake("acct.bye")
    assert pool.server.snapshot().connections == 1
    client.writer.close()
    await asyncio.wait_for(client.writer.wait_closed(), 5)      # asyncio's own shutdown timeout is 30 s
    await wait_for(lambda: pool.server.snapshot().connections == 0, 5, "the pool to drop it")
