"""Static checks of docker/ (no Docker engine runs here): the container configs load, and the
compose file, HAProxy config and Dockerfile agree with each other and with the repository."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import pool.config

yaml = pytest.importorskip("yaml")
DOCKER = Path(__file__).resolve().parents[2] / "docker"
ROOT = DOCKER.parent


def compose() -> dict:
    return yaml.safe_load((DOCKER / "docker-compose.yml").read_text())


def default_interpolation(value: str) -> str:
    """${NAME:-default} -> default, as compose does when NAME is unset."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", value)


@pytest.mark.parametrize("name", ["devnet", "regtest"])
def test_container_configs_load(name: str) -> None:
    env = {key: default_interpolation(value) for key, value in compose()["services"]["pool"]["environment"].items()
           if key.startswith("GEOSTRATUM__")}
    config = pool.config.load(DOCKER / "config" / f"{name}.toml", environ=env)
    subnet = compose()["networks"]["pool"]["ipam"]["config"][0]["subnet"]
    assert config.stratum.trusted_proxies == [subnet]
    assert config.stratum.proxy_header_required
    assert [p.port for p in config.stratum.ports] == [3333] and config.admin.port == 8080
    assert config.admin.host == "0.0.0.0" and config.admin.anonymous == ["health"]
    assert config.redis.url.startswith("redis://redis:")
    if name == "regtest":
        assert config.chain.backend == "bitcoind" and config.chain.nodes[0].url == "http://bitcoind:18443"
        assert config.chain.nodes[0].zmq_hashblock == "tcp://bitcoind:28332"


def test_compose_wiring() -> None:
    doc = compose()
    services = doc["services"]
    assert set(services) == {"redis", "pool", "haproxy", "bitcoind", "regtest-init"}
    assert services["bitcoind"]["profiles"] == ["regtest"] and services["regtest-init"]["profiles"] == ["regtest"]
    assert "ports" not in services["pool"]                    # only through HAProxy
    assert "127.0.0.1:${ADMIN_PORT:-8080}:8080" in services["haproxy"]["ports"]   # admin on loopback only
    assert "--workers" in services["pool"]["command"]
    assert services["pool"]["deploy"]["replicas"] == "${POOL_REPLICAS:-1}"
    haproxy = (DOCKER / "haproxy.cfg").read_text()
    assert "send-proxy-v2" in haproxy and "check-send-proxy" in haproxy
    assert "pool:3333" in haproxy and "pool:8080" in haproxy
    bitcoind = " ".join(services["bitcoind"]["command"])
    assert "-rpcallowip=" + doc["networks"]["pool"]["ipam"]["config"][0]["subnet"] in bitcoind
    assert "-zmqpubhashblock=tcp://0.0.0.0:28332" in bitcoind


def test_dockerfile_copies_what_exists_and_is_not_ignored() -> None:
    dockerfile = (DOCKER / "Dockerfile").read_text()
    sources = [src for line in dockerfile.splitlines() if line.startswith("COPY ") and "--from" not in line
               for src in line.split()[1:-1]]
    assert sources == ["pyproject.toml", "setup.py", "README.md", "native", "pool", "docker/config"]
    allowed = [line[1:].rstrip("/") for line in (DOCKER / "Dockerfile.dockerignore").read_text().splitlines()
               if line.startswith("!")]
    for src in sources:
        assert (ROOT / src).exists(), src
        assert src in allowed, src
    assert re.search(r"^FROM .* AS build$", dockerfile, re.M) and re.search(r"^FROM .* AS runtime$", dockerfile, re.M)
    assert "pip wheel --no-cache-dir --wheel-dir /wheels ." in dockerfile
