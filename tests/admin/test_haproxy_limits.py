"""The HAProxy configs start under the open-files limit they are sized for: HAProxy needs two files per
connection and refuses to start when it cannot raise its limit to 2 x maxconn + its own (maxconn
200,000 wanted 400,050). The real HAProxy from Debian, on loopback ports, with RLIMIT_NOFILE = 20,000
(the per-process limit stratum.max_connections = 18,000 is sized for, and docker-compose.yml's)."""

from __future__ import annotations

import os
import re
import resource
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.admin.test_docker_files import DOCKER, compose

OPEN_FILES = 20_000
pytestmark = pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy is installed by scripts/setup.sh")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def limit_open_files() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (OPEN_FILES, OPEN_FILES))


def serves(config: Path, port: int, env: dict[str, str], tmp_path: Path) -> None:
    """Start HAProxy on `config` and wait until it accepts on `port` (or exits: its error is the failure)."""
    log = tmp_path / "haproxy.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(["haproxy", "-db", "-f", str(config)], stdout=out, stderr=subprocess.STDOUT,
                                env=env, preexec_fn=limit_open_files)
    try:
        deadline = time.monotonic() + 20
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"haproxy exited {proc.returncode}: {log.read_text().strip()}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError(f"haproxy not listening on {port} after 20 s: {log.read_text()}") from None
                time.sleep(0.05)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def test_the_compose_balancer_starts_under_its_containers_open_files_limit(tmp_path: Path) -> None:
    nofile = compose()["services"]["haproxy"]["ulimits"]["nofile"]
    assert nofile == {"soft": OPEN_FILES, "hard": OPEN_FILES}
    stratum, admin = free_port(), free_port()
    text = (DOCKER / "haproxy.cfg").read_text()
    text = text.replace("bind :3333", f"bind 127.0.0.1:{stratum}").replace("bind :8080", f"bind 127.0.0.1:{admin}")
    config = tmp_path / "haproxy.cfg"
    config.write_text(text)
    env = {k: v for k, v in os.environ.items() if k != "HAPROXY_MAXCONN"}   # the file's own default
    serves(config, stratum, env, tmp_path)


def test_the_hosts_balancer_starts_under_20000_open_files(tmp_path: Path) -> None:
    stratum, stats = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k != "HAPROXY_MAXCONN"}
    env.update(STRATUM_BIND=f"127.0.0.1:{stratum}", STATS_BIND=f"127.0.0.1:{stats}",
               POOL_HOST_1="127.0.0.2", POOL_HOST_2="127.0.0.3", POOL_HOST_3="127.0.0.4")
    serves(DOCKER / "hosts" / "haproxy.cfg", stratum, env, tmp_path)


def test_one_default_connection_limit_everywhere() -> None:
    defaults = {re.search(r'maxconn "\$\{HAPROXY_MAXCONN-(\d+)\}"', (DOCKER / name).read_text()).group(1)  # type: ignore[union-attr]
                for name in ("haproxy.cfg", "hosts/haproxy.cfg")}
    assert defaults == {"9500"}
    assert compose()["services"]["haproxy"]["environment"]["HAPROXY_MAXCONN"] == "${HAPROXY_MAXCONN:-9500}"
    assert "HAPROXY_MAXCONN=9500" in (DOCKER / "env.example").read_text()
