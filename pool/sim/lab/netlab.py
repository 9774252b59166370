"""Hosts made of Linux network namespaces, for tests and benchmarks of the pool spread over machines.

Topology (every name starts with the lab's unique prefix, e.g. ``gs3fa1-h1``; nothing leaves the
machine: no namespace has a route to a real interface):

    [wan]  the miners, on real public addresses that exist only inside this namespace
      |  veth, 192.0.2.0/24 (TEST-NET-1)
    [lb]   the load balancer: 192.0.2.1 towards the miners, 10.213.N.2 on the LAN
      |  veth into the switch
    [sw]   a namespace holding only the bridge (the LAN 10.213.N.0/24)
      |-- [h1] 10.213.N.11   [h2] .12   [h3] .13   (pool hosts, each its own hostname too)
      |-- [chain] .5         (stands in for bitcoind)
      '-- the test's own namespace, .1 on an interface named <prefix>lan (so the test reaches the
          admin APIs and Redis; removed with the switch)

A process is started in a namespace with `spawn`; `kill_namespace` SIGKILLs every process inside
one (`ip netns pids`), which is exactly what losing that machine looks like to the others.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

WAN_GATEWAY = "192.0.2.254"      # the wan side of the wan<->lb link
BALANCER_PUBLIC = "192.0.2.1"    # where the miners connect

# Sets the UTS namespace's hostname, then becomes the command (a host has its own name).
_WITH_HOSTNAME = "import os, socket, sys; socket.sethostname(sys.argv[1]); os.execvp(sys.argv[2], sys.argv[2:])"


class NetLabError(RuntimeError):
    pass


def unavailable_reason() -> str:
    """'' when this machine can build a lab (root, iproute2 with netns, unshare); else why not."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    for tool in ("ip", "unshare"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    probe = f"gsprobe{secrets.token_hex(3)}"
    done = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if done.returncode != 0:
        return f"cannot create a network namespace: {done.stderr.strip()}"
    try:
        checks = [("a veth pair", ["ip", "-n", probe, "link", "add", "a0", "type", "veth", "peer", "name", "b0"]),
                  ("a bridge", ["ip", "-n", probe, "link", "add", "br0", "type", "bridge"]),
                  ("a UTS namespace", ["ip", "netns", "exec", probe, "unshare", "--uts", "--", "true"])]
        for what, argv in checks:
            done = subprocess.run(argv, capture_output=True, text=True)
            if done.returncode != 0:
                return f"cannot create {what}: {done.stderr.strip()}"
    finally:
        subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return ""


def _ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise NetLabError(f"ip {' '.join(args)}: {done.stderr.strip()}")


def _free_lan_octet() -> int:
    """A third octet N such that 10.213.N.0/24 is not used on this machine's own interfaces."""
    used = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True).stdout
    routes = subprocess.run(["ip", "-4", "route"], capture_output=True, text=True).stdout
    for _ in range(200):
        octet = 1 + secrets.randbelow(254)
        if f"10.213.{octet}." not in used + routes:
            return octet
    raise NetLabError("no free 10.213.N.0/24 subnet")


class NetLab:
    """Builds the topology above; `close` removes every namespace and interface it made."""

    def __init__(self, hosts: Sequence[str] = ("h1", "h2", "h3"), prefix: str | None = None) -> None:
        self.prefix = prefix or f"gs{secrets.token_hex(2)}"
        self.hosts = list(hosts)
        self.octet = _free_lan_octet()
        self.created: list[str] = []
        self.processes: list[subprocess.Popen[bytes]] = []

    # -- names and addresses ----------------------------------------------------------------------

    def ns(self, name: str) -> str:
        return f"{self.prefix}-{name}"

    def lan(self, last: int) -> str:
        return f"10.213.{self.octet}.{last}"

    @property
    def root_address(self) -> str:
        return self.lan(1)

    @property
    def balancer_lan(self) -> str:
        return self.lan(2)

    @property
    def chain_address(self) -> str:
        return self.lan(5)

    def host_address(self, host: str) -> str:
        return self.lan(11 + self.hosts.index(host))

    # -- building ---------------------------------------------------------------------------------

    def create(self, wan_addresses: Sequence[str] = ()) -> NetLab:
        try:
            self._create(wan_addresses)
        except BaseException:
            self.close()
            raise
        return self

    def _add_ns(self, name: str) -> str:
        ns = self.ns(name)
        _ip("netns", "add", ns)
        self.created.append(ns)
        _ip("-n", ns, "link", "set", "lo", "up")
        return ns

    def _create(self, wan_addresses: Sequence[str]) -> None:
        sw = self._add_ns("sw")
        _ip("-n", sw, "link", "add", "br0", "type", "bridge")
        _ip("-n", sw, "link", "set", "br0", "up")
        for name, last in [("lb", 2), ("chain", 5)] + [(h, 11 + i) for i, h in enumerate(self.hosts)]:
            ns = self._add_ns(name)
            # Both ends are made where they live: no name ever appears in the test's namespace.
            _ip("link", "add", "lan0", "netns", ns, "type", "veth", "peer", "name", name, "netns", sw)
            _ip("-n", sw, "link", "set", name, "master", "br0", "up")
            _ip("-n", ns, "addr", "add", f"{self.lan(last)}/24", "dev", "lan0")
            _ip("-n", ns, "link", "set", "lan0", "up")
        # The test's own leg on the LAN (deleting the switch namespace deletes the pair).
        root_if = f"{self.prefix}lan"
        _ip("link", "add", root_if, "type", "veth", "peer", "name", "root", "netns", sw)
        _ip("-n", sw, "link", "set", "root", "master", "br0", "up")
        _ip("addr", "add", f"{self.root_address}/24", "dev", root_if)
        _ip("link", "set", root_if, "up")
        # The miners' side: a link from lb to wan, the miners' public addresses on wan.
        wan, lb = self._add_ns("wan"), self.ns("lb")
        _ip("link", "add", "lb0", "netns", wan, "type", "veth", "peer", "name", "wan0", "netns", lb)
        _ip("-n", lb, "addr", "add", f"{BALANCER_PUBLIC}/24", "dev", "wan0")
        _ip("-n", lb, "link", "set", "wan0", "up")
        _ip("-n", wan, "addr", "add", f"{WAN_GATEWAY}/24", "dev", "lb0")
        _ip("-n", wan, "link", "set", "lb0", "up")
        for address in wan_addresses:
            ipaddress.IPv4Address(address)
            _ip("-n", wan, "addr", "add", f"{address}/32", "dev", "lb0")
        _ip("-n", lb, "route", "add", "default", "via", WAN_GATEWAY, "dev", "wan0")

    # -- processes --------------------------------------------------------------------------------

    def command(self, name: str, argv: Sequence[str], hostname: str | None = None) -> list[str]:
        """argv run inside namespace `name`; with `hostname`, in a UTS namespace of that name."""
        inner = list(argv)
        if hostname is not None:
            inner = ["unshare", "--uts", "--", sys.executable, "-c", _WITH_HOSTNAME, hostname, *inner]
        return ["ip", "netns", "exec", self.ns(name), *inner]

    def spawn(self, name: str, argv: Sequence[str], *, log: Path, hostname: str | None = None,
              env: dict[str, str] | None = None, cwd: Path | None = None,
              stdin: int | None = None, stdout: int | None = None) -> subprocess.Popen[bytes]:
        with log.open("ab") as out:
            process = subprocess.Popen(self.command(name, argv, hostname), stdout=stdout or out, stderr=out,
                                       stdin=stdin if stdin is not None else subprocess.DEVNULL, env=env, cwd=cwd)
        self.processes.append(process)
        return process

    def pids(self, name: str) -> list[int]:
        return self._pids_of(self.ns(name))

    def kill_namespace(self, name: str) -> list[int]:
        """SIGKILL every process in namespace `name` (the machine is gone); returns their PIDs."""
        pids = self.pids(name)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while self.pids(name) and time.monotonic() < deadline:
            time.sleep(0.02)
        for process in self.processes:
            if process.poll() is None and process.pid in pids:
                process.wait(timeout=5)
        return pids

    def close(self) -> None:
        """Stop what we started (TERM, then KILL), then delete our namespaces (their links go too)."""
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for name in self.created:
            deadline = time.monotonic() + 8
            while self._pids_of(name) and time.monotonic() < deadline:
                time.sleep(0.05)
            for pid in self._pids_of(name):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        for process in self.processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=5)
        for ns in reversed(self.created):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        self.created = []
        subprocess.run(["ip", "link", "del", f"{self.prefix}lan"], capture_output=True)

    @staticmethod
    def _pids_of(ns: str) -> list[int]:
        done = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True)
        return [int(p) for p in done.stdout.split()]
