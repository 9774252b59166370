"""When bytes reached a client socket, as the kernel stamped them (SO_TIMESTAMPNS), and a latency
client that uses those stamps.

The load generators share the 2 vCPUs with the server. A reply that sits in a generator's socket
buffer while the generator is busy elsewhere has already been delivered: counting that wait would
charge the generator's own scheduling to the server. The kernel stamps each segment as it is queued on
the receiving socket (on loopback: inside the server's send), so `arrival - sent` is the
submit-to-reply latency a remote miner on an idle link would see. Figures as the generator process saw
them are reported next to these, never instead of them.
"""

from __future__ import annotations

import heapq
import json
import os
import select
import socket
import struct
import time
from typing import Any

SO_TIMESTAMPNS = 35          # asm-generic value (x86-64 and arm64); SCM_TIMESTAMPNS is the same number
_TIMESPEC = struct.Struct("@qq")
_ANCILLARY = socket.CMSG_SPACE(_TIMESPEC.size)


def stamp_arrivals(sock: Any) -> None:
    """Ask the kernel to stamp arrivals on this socket (CLOCK_REALTIME, like time.time())."""
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)


def receive_stamped(sock: socket.socket, size: int = 65536) -> tuple[bytes, float | None]:
    """Read what is queued and the kernel's arrival time of the last segment read."""
    data, ancillary, _flags, _addr = sock.recvmsg(size, _ANCILLARY)
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(payload) >= _TIMESPEC.size:
            seconds, nanoseconds = _TIMESPEC.unpack_from(payload)
            return data, seconds + nanoseconds * 1e-9
    return data, None


_keep_stamping: list[socket.socket] = []


def ensure_arrival_stamping(timeout: float = 5.0) -> None:
    """Make sure the kernel stamps segments as they arrive, before anything is measured.

    The first socket on the machine to ask for stamps switches stamping on through deferred work;
    until that has run, a segment is stamped when it is *read*, which would hide exactly the delay
    measured here. A probe pair is kept open for the life of the process (so stamping stays on) and
    checked: a byte read 50 ms after it was sent must carry a stamp 40 ms older than the read."""
    if _keep_stamping:
        return
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        probe = socket.create_connection(listener.getsockname())
        peer, _ = listener.accept()
    stamp_arrivals(probe)
    _keep_stamping.extend((probe, peer))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        peer.sendall(b"x")
        time.sleep(0.05)
        _data, arrived = receive_stamped(probe, 16)
        if arrived is not None and time.time() - arrived >= 0.04:
            return
    raise RuntimeError("the kernel does not stamp arrivals (SO_TIMESTAMPNS); latency cannot be measured")


def source_address(index: int) -> str:
    return f"127.{10 + index // 50000}.{(index // 200) % 250}.{1 + index % 200}"


HELLO = (b'{"id":1,"method":"mining.subscribe","params":["benchminer/1.0"]}\n'
         b'{"id":2,"method":"mining.authorize","params":["bench.w%d","x"]}\n')


class _Miner:
    __slots__ = ("head", "index", "nonce", "sent_at", "sock")

    def __init__(self, sock: socket.socket, head: bytes, index: int) -> None:
        self.sock = sock
        self.head = head
        self.nonce = 0
        self.sent_at = 0.0
        self.index = index

    def send_submit(self) -> None:
        self.nonce += 1
        self.sent_at = time.time()
        self.sock.send(b'{"id":%d,%s%08x"]}\n' % (self.nonce & 255, self.head, self.nonce))


def _handshake(port: int, index: int, timeout: float = 30.0) -> _Miner:
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                    source_address=(source_address(index), 0))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.sendall(HELLO % index)
    buffer = b""
    job_id = ntime = ""
    authorized = False
    while not (job_id and authorized):
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("server closed the connection during the handshake")
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            message = json.loads(line)
            if message.get("method") == "mining.notify":
                job_id, ntime = message["params"][0], message["params"][7]
            elif message.get("id") == 2:
                authorized = message.get("result") is True
    head = (b'"method":"mining.submit","params":["bench.w%d","%s","%08x","%s","'
            % (index, job_id.encode(), index, ntime.encode()))
    sock.setblocking(False)
    stamp_arrivals(sock)
    return _Miner(sock, head, index)


def measure_latency(port: int, connections: int, first: int, warmup: float, duration: float,
                    pace: float = 0.0) -> dict[str, Any]:
    """`connections` miners with one submit in flight each; with `pace`, each waits that long after
    its reply before the next submit. Latencies from the kernel's arrival stamp and from the moment
    this process read the reply."""
    ensure_arrival_stamping()
    miners = [_handshake(port, first + i) for i in range(connections)]
    by_fd = {miner.sock.fileno(): miner for miner in miners}
    poller = select.epoll()
    for fd in by_fd:
        poller.register(fd, select.EPOLLIN)
    at_socket: list[float] = []
    at_process: list[float] = []
    due: list[tuple[float, int]] = []      # (send time, fd) for paced miners
    accepted = replies = unstamped = 0
    for miner in miners:
        miner.send_submit()
    started = time.time()
    measure_from = started + warmup
    stop_at = measure_from + duration
    measuring = False
    while True:
        now = time.time()
        if now >= stop_at:
            break
        if not measuring and now >= measure_from:
            measuring = True
            accepted = replies = 0
        while due and due[0][0] <= now:
            _, fd = heapq.heappop(due)
            by_fd[fd].send_submit()
        timeout = max(0.0, min(stop_at, due[0][0] if due else stop_at) - now)
        for fd, _events in poller.poll(timeout):
            miner = by_fd[fd]
            data, arrived = receive_stamped(miner.sock)
            read_at = time.time()
            if not data:
                raise ConnectionError(f"server closed connection {miner.index}")
            lines = data.count(b"\n")
            if not lines:
                continue
            replies += lines
            accepted += data.count(b"true")
            if measuring:
                at_process.append(read_at - miner.sent_at)
                if arrived is None:
                    unstamped += 1
                else:
                    at_socket.append(arrived - miner.sent_at)
            if pace:
                heapq.heappush(due, (read_at + pace, fd))
            else:
                miner.send_submit()
    elapsed = time.time() - measure_from
    for miner in miners:
        miner.sock.close()
    poller.close()
    return {"accepted_per_s": accepted / elapsed, "replies_per_s": replies / elapsed, "seconds": elapsed,
            "samples": len(at_socket), "unstamped": unstamped,
            "at_socket": percentiles(at_socket), "at_process": percentiles(at_process)}


def percentiles(samples: list[float]) -> dict[str, float]:
    if not samples:
        return {}
    ordered = sorted(samples)
    pick = lambda q: round(ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1e3, 3)  # noqa: E731
    return {"p50_ms": pick(0.50), "p90_ms": pick(0.90), "p99_ms": pick(0.99), "p999_ms": pick(0.999),
            "max_ms": round(ordered[-1] * 1e3, 3)}


def open_idle_miners(port: int, count: int, first: int, in_flight: int = 256,
                     timeout: float = 120.0) -> list[socket.socket]:
    """`count` subscribed and authorized connections that then sit idle with arrival stamping on.

    Plain sockets, unregistered from every poller once ready: a notify landing on them wakes nobody,
    so the generator takes no CPU from the server during a fan-out (a paused asyncio transport would
    still be woken once per socket)."""
    ensure_arrival_stamping()
    poller = select.epoll()
    handshaking: dict[int, tuple[socket.socket, int, bytearray]] = {}
    ready: list[socket.socket] = []
    next_index = 0
    deadline = time.monotonic() + timeout
    while len(ready) < count:
        while next_index < count and len(handshaking) < in_flight:
            sock = socket.socket()
            sock.setblocking(False)
            sock.bind((source_address(first + next_index), 0))
            sock.connect_ex(("127.0.0.1", port))
            poller.register(sock.fileno(), select.EPOLLOUT)
            handshaking[sock.fileno()] = (sock, first + next_index, bytearray())
            next_index += 1
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(ready)} of {count} connections ready after {timeout} s")
        for fd, events in poller.poll(1.0):
            sock, index, buffer = handshaking[fd]
            if events & select.EPOLLOUT:
                error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if error:
                    raise ConnectionError(f"connect from {source_address(index)}: {os.strerror(error)}")
                sock.send(HELLO % index)
                poller.modify(fd, select.EPOLLIN)
                continue
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"server closed connection {index} during the handshake")
            buffer += chunk
            if b"mining.notify" in buffer and b'"id":2' in buffer:
                poller.unregister(fd)
                del handshaking[fd]
                stamp_arrivals(sock)
                ready.append(sock)
    poller.close()
    return ready


def arrivals(socks: list[socket.socket], marker: bytes) -> list[float]:
    """The kernel's arrival stamp of the data queued on each socket that contains `marker`."""
    stamps = []
    for sock in socks:
        try:
            data, arrived = receive_stamped(sock)
        except BlockingIOError:
            continue
        if marker in data and arrived is not None:
            stamps.append(arrived)
    return stamps
