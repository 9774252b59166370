"""The pool spread over three namespace hosts: a devnet node standing in for bitcoind, a Redis Cluster
of three masters with a replica each (two redis-servers per host, each replica on the next host),
`geostratum run --workers 2` on every host from docker/hosts/pool-host.toml, HAProxy from the
distribution in its own namespace with docker/hosts/haproxy.cfg, and a fleet of reconnecting miners on
real public addresses (pool/sim/lab/fleet_proc.py) mining through it.

Used by tests/hosts/test_several_hosts.py and benchmarks/bench_failover.py.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import random
import select
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import msgspec
import redis

from pool.bus.link import ClusterKeys
from pool.cluster.snapshot import NodeSnapshot
from pool.geo.country_ips import draw_ips
from pool.sim.lab.netlab import BALANCER_PUBLIC, NetLab

ROOT = Path(__file__).resolve().parents[3]
DOCKER_HOSTS = ROOT / "docker" / "hosts"
READ_TOKEN = "hosts-lab-read-token-0123456789"
ADMIN_TOKEN = "hosts-lab-admin-token-0123456789"
MASTER_PORT, REPLICA_PORT = 7000, 7001
STRATUM_PORT, ADMIN_PORT, STATS_PORT, CHAIN_PORT = 3333, 8080, 8404, 18443
# Devnet difficulty 4e-5 (about 170,000 hashes a block), shares at 2e-6 (~8,600 hashes): a fleet of a
# few hundred kH/s finds shares many times a second and a block every second or two.
DEVNET_NBITS = "1e61a79e"
SHARE_DIFFICULTY = 2e-6

T = TypeVar("T")


def wait_until(predicate: Callable[[], T], timeout: float, what: str, interval: float = 0.1) -> T:
    """The predicate's first truthy result; AssertionError naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(OSError, redis.RedisError):
            result = predicate()
            if result:
                return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def unavailable_reason() -> str:
    from pool.sim.lab.netlab import unavailable_reason as netns_reason

    for tool in ("haproxy", "redis-server", "redis-cli"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (scripts/setup.sh installs it)"
    return netns_reason()


class FleetRun:
    """The miners' process in the wan namespace: its event log, read as it grows, and its final report."""

    def __init__(self, process: subprocess.Popen[bytes], events_path: Path) -> None:
        self.process = process
        self.events_path = events_path
        self.events: list[dict[str, Any]] = []
        self._offset = 0

    def poll(self) -> list[dict[str, Any]]:
        """Every event so far (new ones parsed from the file)."""
        with self.events_path.open("rb") as fh:
            fh.seek(self._offset)
            data = fh.read()
        complete = data[: data.rfind(b"\n") + 1]
        self._offset += len(complete)
        self.events.extend(json.loads(line) for line in complete.splitlines() if line)
        return self.events

    def stop(self, timeout: float = 30.0) -> dict[str, dict[str, Any]]:
        """Stop every miner cleanly; their ClientStats by worker name."""
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(b"stop\n")
        self.process.stdin.flush()
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        assert ready, "the fleet did not report within the timeout"
        report = json.loads(self.process.stdout.readline())
        self.process.wait(timeout=10)
        self.poll()
        return report


class PoolLab:
    def __init__(self, workdir: Path, regions: dict[str, int], *, hashrate: float = 12_000.0,
                 seed: int = 15, stratum: dict[str, Any] | None = None) -> None:
        self.workdir = workdir
        self.hashrate = hashrate
        self.stratum_overrides = stratum or {}   # more [stratum] keys for every host
        rng = random.Random(seed)
        # Who mines from where: real public addresses the geo database places in each region.
        self.miners: list[dict[str, str]] = []
        for region, count in regions.items():
            country, _, subdivision = region.partition("/")
            for address in draw_ips(country, count, rng, subdivision=subdivision or None):
                i = len(self.miners)
                self.miners.append({"username": f"m{i}.rig", "account": f"m{i}", "address": address,
                                    "country": country, "subdivision": subdivision})
        self.net = NetLab()
        self.hosts = self.net.hosts
        self.pools: dict[str, subprocess.Popen[bytes]] = {}
        self.redis_nodes: dict[tuple[str, int], subprocess.Popen[bytes]] = {}

    # -- addresses ------------------------------------------------------------------------------

    def node_url(self, host: str, port: int) -> str:
        return f"redis://{self.net.host_address(host)}:{port}"

    def admin_url(self, host: str) -> str:
        return f"http://{self.net.host_address(host)}:{ADMIN_PORT}"

    def log(self, name: str) -> Path:
        return self.workdir / f"{name}.log"

    # -- start ----------------------------------------------------------------------------------

    def start(self) -> PoolLab:
        self.net.create([m["address"] for m in self.miners])
        try:
            self.start_chain()
            self.start_redis()
            for host in self.hosts:
                self.start_pool(host)
            self.start_balancer()
            for host in self.hosts:
                wait_until(lambda h=host: self.health(h) is not None, 60, f"the admin API of {host}", 0.3)
            wait_until(lambda: self.balancer_states() == {h: "UP" for h in self.hosts}, 30,
                       "HAProxy to see every host UP", 0.2)
        except BaseException:
            self.close()
            raise
        return self

    def start_chain(self) -> None:
        config = self.workdir / "chain.toml"
        config.write_text(f'[chain.devnet]\nnbits = "{DEVNET_NBITS}"\ntx_interval = 1.0\n')
        self.net.spawn("chain", [sys.executable, "-m", "pool.chain.devnet_server", "--config", str(config),
                                 "--host", self.net.chain_address, "--port", str(CHAIN_PORT)],
                       log=self.log("chain"), cwd=ROOT)

    def _redis_argv(self, host: str, port: int) -> list[str]:
        data = self.workdir / "redis" / f"{host}-{port}"
        data.mkdir(parents=True, exist_ok=True)
        return ["redis-server", str(DOCKER_HOSTS / "redis-node.conf"), "--bind", self.net.host_address(host),
                "--port", str(port), "--dir", str(data), "--cluster-node-timeout", "1000"]

    def start_redis_node(self, host: str, port: int) -> None:
        self.redis_nodes[(host, port)] = self.net.spawn(host, self._redis_argv(host, port),
                                                        log=self.log(f"redis-{host}-{port}"))

    def start_redis(self) -> None:
        for host in self.hosts:
            for port in (MASTER_PORT, REPLICA_PORT):
                self.start_redis_node(host, port)
        for host in self.hosts:
            for port in (MASTER_PORT, REPLICA_PORT):
                wait_until(lambda h=host, p=port: self.client(h, p).ping(), 20, f"redis {host}:{port}", 0.05)
        masters = [f"{self.net.host_address(h)}:{MASTER_PORT}" for h in self.hosts]
        self._cli("--cluster", "create", *masters, "--cluster-replicas", "0", "--cluster-yes")
        for i, host in enumerate(self.hosts):
            # The replica of host i's master lives on the next host.
            replica_host = self.hosts[(i + 1) % len(self.hosts)]
            master_id = self.client(host, MASTER_PORT).execute_command("CLUSTER MYID")
            self._cli("--cluster", "add-node", f"{self.net.host_address(replica_host)}:{REPLICA_PORT}",
                      masters[i], "--cluster-slave", "--cluster-master-id",
                      master_id.decode() if isinstance(master_id, bytes) else master_id)
        wait_until(self.cluster_ready, 60, "the Redis Cluster (3 masters, each with an in-sync replica)", 0.2)

    def _cli(self, *args: str) -> None:
        done = subprocess.run(["redis-cli", *args], capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise RuntimeError(f"redis-cli {' '.join(args)}: {done.stdout[-800:]} {done.stderr[-800:]}")

    def client(self, host: str, port: int) -> redis.Redis:
        return redis.Redis(host=self.net.host_address(host), port=port, socket_timeout=2, socket_connect_timeout=1)

    def cluster_ready(self) -> bool:
        for host in self.hosts:
            for port in (MASTER_PORT, REPLICA_PORT):
                if self.client(host, port).cluster("INFO").get("cluster_state") != "ok":
                    return False
            info = self.client(host, MASTER_PORT).info("replication")
            if info.get("role") != "master" or info.get("connected_slaves") != 1:
                return False
        return True

    def cluster_ok(self) -> bool:
        """Every live node says cluster_state:ok (every slot has a master)."""
        alive = [(h, p) for (h, p), proc in self.redis_nodes.items() if proc.poll() is None]
        return all(self.client(h, p).cluster("INFO").get("cluster_state") == "ok" for h, p in alive)

    def roles(self) -> dict[tuple[str, int], str]:
        """Role of every reachable node ("master"/"slave")."""
        out = {}
        for (host, port), process in self.redis_nodes.items():
            if process.poll() is None:
                with contextlib.suppress(redis.RedisError, OSError):
                    out[(host, port)] = self.client(host, port).info("replication")["role"]
        return out

    def cluster_client(self) -> redis.RedisCluster:
        alive = [(h, p) for (h, p), proc in self.redis_nodes.items() if proc.poll() is None]
        nodes = [redis.cluster.ClusterNode(self.net.host_address(h), p) for h, p in alive]
        return redis.RedisCluster(startup_nodes=nodes, socket_timeout=2, socket_connect_timeout=1)

    def pool_overrides(self, host: str) -> dict[str, Any]:
        address = self.net.host_address(host)
        urls = [self.node_url(h, p) for h in self.hosts for p in (MASTER_PORT, REPLICA_PORT)]
        base = self.workdir / host
        return {
            "pool": {"name": "lab", "data_dir": str(base / "var")},
            "chain": {"network": "devnet", "poll_interval": 0.5,
                      "nodes": [{"name": "chain", "url": f"http://{self.net.chain_address}:{CHAIN_PORT}/",
                                 "user": "devnet", "password": "devnet"}]},
            "stratum": {"trusted_proxies": [f"{self.net.balancer_lan}/32"], "resume_sync_seconds": 1.0,
                        "resume_loan_seconds": 30.0,
                        # The directory's master may die with a host: wait out a slow promotion.
                        "resume_directory_wait": 15.0, **self.stratum_overrides,
                        "ports": [{"port": STRATUM_PORT, "host": address, "start_difficulty": SHARE_DIFFICULTY,
                                   "min_difficulty": 1e-7, "max_difficulty": 1.0, "vardiff": False}]},
            "redis": {"url": urls[0], "urls": urls[1:], "connect_timeout_s": 1.0, "socket_timeout_s": 2.0},
            # Failover, not money: SOLO keeps no balances, so no books' database is needed here.
            "money": {"dsn": ""}, "payouts": {"scheme": "solo"},
            "ledger": {"journal_dir": str(base / "journal"), "bucket_units": 10**9, "redis_retry_ms": 200,
                       "down_cut_interval_ms": 500, "block_poll_interval_s": 1.0},
            "admin": {"host": address, "port": ADMIN_PORT, "read_tokens": [READ_TOKEN],
                      "admin_tokens": [ADMIN_TOKEN], "rate_limit_per_second": 1000.0, "rate_limit_burst": 1000,
                      "snapshot_interval_seconds": 0.5, "snapshot_ttl_seconds": 2.0},
        }

    def start_pool(self, host: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GEOSTRATUM")}
        env["GEOSTRATUM_CONFIG_OVERRIDES"] = json.dumps(self.pool_overrides(host))
        self.pools[host] = self.net.spawn(
            host, [sys.executable, "-m", "pool.cli", "run", "--workers", "2", "--config",
                   str(DOCKER_HOSTS / "pool-host.toml"), "--log-level", "info"],
            log=self.log(f"pool-{host}"), hostname=f"lab-{host}", env=env, cwd=ROOT)

    def start_balancer(self) -> None:
        env = dict(os.environ, HAPROXY_MAXCONN="4000", STRATUM_BIND=f"{BALANCER_PUBLIC}:{STRATUM_PORT}",
                   STATS_BIND=f"{self.net.balancer_lan}:{STATS_PORT}",
                   **{f"POOL_HOST_{i + 1}": self.net.host_address(h) for i, h in enumerate(self.hosts)})
        self.net.spawn("lb", ["haproxy", "-db", "-f", str(DOCKER_HOSTS / "haproxy.cfg")], log=self.log("haproxy"),
                       env=env)

    def start_fleet(self) -> FleetRun:
        plan = self.workdir / "fleet.json"
        plan.write_text(json.dumps({"host": BALANCER_PUBLIC, "port": STRATUM_PORT, "hashrate": self.hashrate,
                                    "miners": [{"username": m["username"], "address": m["address"]}
                                               for m in self.miners]}))
        events = self.workdir / "fleet-events.jsonl"
        events.touch()
        process = self.net.spawn("wan", [sys.executable, "-m", "pool.sim.lab.fleet_proc", str(plan), str(events)],
                                 log=self.log("fleet"), cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        return FleetRun(process, events)

    # -- observe --------------------------------------------------------------------------------

    def api(self, host: str, path: str, timeout: float = 3.0) -> Any:
        request = urllib.request.Request(self.admin_url(host) + path,
                                         headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())

    def health(self, host: str) -> Any:
        try:
            return self.api(host, "/api/v1/health")
        except urllib.error.HTTPError as exc:   # 503: up, but not healthy (yet)
            return json.loads(exc.read()) if exc.code == 503 else None

    def balancer_states(self) -> dict[str, str]:
        """HAProxy's view of each pool host in the stratum backend ("UP", "DOWN", ...)."""
        url = f"http://{self.net.balancer_lan}:{STATS_PORT}/stats;csv"
        with urllib.request.urlopen(url, timeout=2) as response:
            rows = response.read().decode().lstrip("# ").splitlines()
        header = rows[0].split(",")
        out = {}
        for row in rows[1:]:
            cells = dict(zip(header, row.split(","), strict=False))
            if cells.get("pxname") == "pool_stratum" and cells.get("svname") in self.hosts:
                out[cells["svname"]] = cells["status"].split(" ")[0]
        return out

    def snapshots(self) -> dict[str, NodeSnapshot]:
        """Every pool process's published snapshot, by node name (read from the Redis Cluster)."""
        keys = ClusterKeys("gs")
        client = self.cluster_client()
        try:
            names = [n.decode() for n in client.zrangebyscore(keys.nodes, time.time() - 5, "+inf")]
            blobs = [client.get(keys.snapshot(n)) for n in names]
        finally:
            client.close()
        decoder = msgspec.msgpack.Decoder(NodeSnapshot)
        return {n: decoder.decode(b) for n, b in zip(names, blobs, strict=True) if b is not None}

    def placement(self) -> dict[str, str]:
        """worker name -> the host its connection is on (from the snapshots; node names carry the hostname)."""
        out = {}
        for node, snapshot in self.snapshots().items():
            host = node.removeprefix("lab-").split("-", 1)[0]
            for row in snapshot.rows:
                out[row.worker] = host
        return out

    def chain_confirmations(self, block_hash: str) -> int:
        """The devnet node's confirmations of a block (-1: not on its best chain)."""
        body = json.dumps({"id": 1, "method": "getblockheader", "params": [block_hash, True]}).encode()
        auth = "Basic " + base64.b64encode(b"devnet:devnet").decode()
        request = urllib.request.Request(f"http://{self.net.chain_address}:{CHAIN_PORT}/", data=body,
                                         headers={"Authorization": auth})
        with urllib.request.urlopen(request, timeout=3) as response:
            return int(json.loads(response.read())["result"]["confirmations"])

    def placed(self, names: set[str]) -> dict[str, str] | None:
        """worker -> host once the hosts' snapshots hold exactly these workers."""
        placement = self.placement()
        return placement if set(placement) == names else None

    def ledger_counts(self) -> tuple[int, dict[str, int]]:
        """(pool total shares, shares per account) as the books in Redis hold them."""
        client = self.cluster_client()
        try:
            total = int(client.hget("{gs:pool}:tot", "n") or 0)
            per: dict[str, int] = {}
            for shard in range(16):
                for account, n in client.hgetall(f"{{gs:s{shard}}}:acct:n").items():
                    per[account.decode()] = int(n)
        finally:
            client.close()
        return total, per

    # -- stop -----------------------------------------------------------------------------------

    def stop_pool(self, host: str, timeout: float = 40.0) -> int:
        process = self.pools[host]
        if process.poll() is None:
            process.terminate()
        return process.wait(timeout=timeout)

    def close(self) -> None:
        self.net.close()

    def logs_tail(self, chars: int = 2500) -> str:
        parts = []
        for path in sorted(self.workdir.glob("*.log")):
            text = path.read_text(errors="replace")
            parts.append(f"--- {path.name}\n{text[-chars:]}")
        return "\n".join(parts)


def last_extranonce(events: list[dict[str, Any]]) -> dict[str, str]:
    """worker -> extranonce1 of its latest subscribe."""
    return {e["worker"]: e["extranonce1"] for e in events if e["kind"] == "subscribed"}


class Failover(msgspec.Struct, kw_only=True):
    """One miner's way from a dead host to a live one (wall-clock times)."""

    worker: str
    disconnected_at: float
    connected_at: float           # its last new TCP connection to the balancer
    subscribed_at: float          # its new subscribe answered, through HAProxy, by a surviving host
    resumed: bool                 # with its old extranonce1 and session id
    first_share_at: float         # first accepted share on the new connection


def failovers(events: list[dict[str, Any]], workers: list[str], since: float,
              extranonce1: dict[str, str]) -> dict[str, Failover] | None:
    """Each worker's failover after `since`, once every one of them has an accepted share on its new
    connection (None before)."""
    out = {}
    for worker in workers:
        mine = [e for e in events if e.get("worker") == worker and e["t"] >= since]
        lost = next((e for e in mine if e["kind"] == "disconnected"), None)
        subscribed = [e for e in mine if e["kind"] == "subscribed"]
        if lost is None or not subscribed:
            return None
        last = subscribed[-1]
        share = next((e for e in mine if e["kind"] == "accepted" and e["t"] >= last["t"]), None)
        if share is None:
            return None
        connected = [e["t"] for e in mine if e["kind"] == "connected" and e["t"] <= last["t"]]
        out[worker] = Failover(worker=worker, disconnected_at=lost["t"], connected_at=connected[-1],
                               subscribed_at=last["t"],
                               resumed=last["resumed"] and last["extranonce1"] == extranonce1[worker],
                               first_share_at=share["t"])
    return out
