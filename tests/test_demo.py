"""scripts/demo.sh, the README's first command, end to end (set-up skipped: the suite runs set up): its
own Redis, PostgreSQL, the pool and a small fleet; the progress lines put the fleet's counted hashrate
beside the pool's estimate, and the stop goes fleet, pool, stores: the pool writes every accepted share
to Redis before Redis is asked to stop."""

from __future__ import annotations

import datetime as dt
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SET_UP = shutil.which("redis-server") is not None and any(Path("/usr/lib/postgresql").glob("*/bin"))
pytestmark = [pytest.mark.timeout(240),
              pytest.mark.skipif(not SET_UP, reason="scripts/setup.sh installs redis-server and PostgreSQL")]


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in socks]
    finally:
        for sock in socks:
            sock.close()


def test_demo_compares_the_fleet_with_the_pool_and_stops_the_pool_before_its_stores(tmp_path: Path) -> None:
    stratum, admin, redis, pg = free_ports(4)
    demo_dir = tmp_path / "demo"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GEOSTRATUM")}
    env.update(SKIP_SETUP="1", FRESH="1", DEMO_DIR=str(demo_dir), STRATUM_PORT=str(stratum), ADMIN_PORT=str(admin),
               REDIS_PORT=str(redis), PG_PORT=str(pg), MINERS="6", HASHRATE="5000", DURATION="12", REPORT_EVERY="4")
    proc = subprocess.Popen([str(ROOT / "scripts" / "demo.sh")], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=200)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGTERM)        # the script's own session: its cleanup stops what it started
        out, _ = proc.communicate(timeout=60)
        raise AssertionError(f"demo.sh did not finish: {out[-3000:]}") from None
    finally:
        books = re.search(r"^books: .*\(persistent in (\S+)\)$", out or "", re.M)
        if books and books.group(1).startswith("/var/tmp/geostratum-demo-postgres-"):
            shutil.rmtree(books.group(1), ignore_errors=True)
    assert proc.returncode == 0, out[-3000:]

    progress = re.findall(r"^\[ *\d+s\] 6 miners, .* \| hashrate: fleet [0-9.]+ k?H/s \(counted, last \d+ s\), "
                          r"pool (.*)$", out, re.M)
    assert progress, out
    assert all(re.match(r"(warming up \(1m window|[0-9.]+ k?H/s \(1m estimate over \d+ s, 95 % |"
                        r"API gave no figure \(TimeoutError)", p) for p in progress), progress
    done = re.search(r"^fleet done: 6 miners, (\d+) accepted, ", out, re.M)
    assert done and int(done.group(1)) > 0, out

    pool_log = (demo_dir / "pool.log").read_text()
    assert not re.search(r" (ERROR|CRITICAL) ", pool_log), pool_log[-3000:]
    assert "alembic.runtime.plugins" not in pool_log and "not an IP address" not in pool_log   # no noise at start
    if resource.getrlimit(resource.RLIMIT_NOFILE)[1] >= 19_000:   # 18,000 connections fit: the pool says nothing
        assert "open files:" not in pool_log
    stopped = re.search(r"^(\S+ \S+) INFO geostratum: stopped \S+: (\d+) shares accepted since start, (\d+) written "
                        r"to Redis$", pool_log, re.M)
    assert stopped, pool_log[-2000:]
    assert int(stopped.group(2)) == int(stopped.group(3)) == int(done.group(1))   # the fleet waited for its answers
    redis_log = (demo_dir / "redis.log").read_text()
    shutdown = re.search(r"(\d\d \w\w\w \d{4} \d\d:\d\d:\d\d\.\d+) # User requested shutdown", redis_log)
    assert shutdown, redis_log[-2000:]
    pool_stopped_at = dt.datetime.strptime(stopped.group(1), "%Y-%m-%d %H:%M:%S,%f")
    assert pool_stopped_at <= dt.datetime.strptime(shutdown.group(1), "%d %b %Y %H:%M:%S.%f")
    for port in (stratum, admin, redis, pg):              # nothing it started is left listening
        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", port)) != 0, port


def test_a_port_in_use_is_refused_before_anything_starts(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith("GEOSTRATUM")}
        stratum, admin, pg = free_ports(3)
        env.update(SKIP_SETUP="1", DEMO_DIR=str(tmp_path / "demo"), STRATUM_PORT=str(stratum), ADMIN_PORT=str(admin),
                   REDIS_PORT=str(port), PG_PORT=str(pg))
        done = subprocess.run([str(ROOT / "scripts" / "demo.sh")], cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=60, check=False)
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == (f"demo: port {port} on 127.0.0.1 is in use; choose others with STRATUM_PORT, ADMIN_PORT, "
                           "REDIS_PORT, PG_PORT\n")
    assert not (tmp_path / "demo" / "redis").exists()
