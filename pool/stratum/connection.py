"""One TCP connection in the asyncio layer: transport, the PROXY header of a trusted balancer, bytes
to its session (which splits them into bounded lines) and the session's bytes back. Thin on purpose:
protocol decisions live in the session (sans-IO); what many connections share (limits, bans,
events, the resume directory) lives in the server, reached only through ConnectionHost below.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, Protocol

from pool.config.stratum import PortConfig, StratumConfig
from pool.stratum import proxy
from pool.stratum.session import Session
from pool.stratum.tls import TlsError, TlsTransport, looks_like_tls

log = logging.getLogger("pool.stratum")


class ConnectionHost(Protocol):
    """What a connection needs from its server (StratumServer implements it)."""

    config: StratumConfig
    clock: Callable[[], float]

    def connection_opened(self, conn: Connection) -> None:
        """Registered; the server admits it, drops it, or leaves it waiting for a PROXY header."""

    def admit(self, conn: Connection, ip: str, first: bytes = b"") -> None:
        """The miner's address is known: checks, tagging, a session, then `first` (bytes already read)."""

    def connection_closed(self, conn: Connection) -> None: ...

    def charge_rejects(self, session: Session, submits: int, rejects: int, now: float) -> None:
        """Count a read's submits and rejects against the address's budget (it may ban the address)."""

    def dispatch(self, conn: Connection, session: Session) -> None:
        """Hand the session's events to their consumers (and clear them)."""

    def announce(self, conn: Connection, session: Session) -> None:
        """The session has work: tell the resume directory it is live here (if there is one)."""

    def closing(self, conn: Connection, session: Session) -> None:
        """The session asked to close (a ban it earned is applied here)."""


class Connection(asyncio.Protocol):
    __slots__ = ("announced", "buffer", "check_first", "connected_at", "counted", "host", "pending_proxy", "port",
                 "resuming", "session", "socket_ip", "tls", "transport")

    def __init__(self, host: ConnectionHost, port: PortConfig) -> None:
        self.host = host
        self.port = port
        self.transport: Any = None
        self.session: Session | None = None
        self.buffer = b""                       # a PROXY header so far
        self.socket_ip = ""
        self.pending_proxy = False              # from a trusted proxy: its header comes first
        self.check_first = True                 # the first bytes of an untrusted peer: a PROXY header?
        self.counted = ""                       # the address counted against the per-IP limit
        self.connected_at = 0.0
        self.resuming: Session | None = None    # waiting for the resume directory (session is None)
        self.announced = False                  # told the resume directory this session is live here
        self.tls: TlsTransport | None = None    # TLS ports: the layer `transport` became after any PROXY header

    # -- asyncio callbacks --------------------------------------------------------------------------

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.connected_at = self.host.clock()
        peer = transport.get_extra_info("peername")
        if not peer:
            # The peer reset the connection before the accept reached us (a port probe, a miner giving
            # up): there is no address to limit, ban or locate, and nobody to serve.
            transport.abort()
            return
        self.socket_ip = proxy.normalize_ip(peer[0])
        self.host.connection_opened(self)

    def data_received(self, data: bytes) -> None:
        if self.tls is not None:
            data = self.decrypt(data)
            if not data:
                return
        session = self.session
        if session is None:
            if self.pending_proxy:
                self._proxy_data(data)
            elif self.resuming is not None:
                self.resuming.receive_data(data, self.host.clock())   # held until the directory answers
            return
        if self.check_first:
            self.check_first = False
            if proxy.starts_like_proxy(data[:16]) is not False:
                self.drop("PROXY header from an address that is not a trusted proxy")
                return
            if self.tls is None and looks_like_tls(data):
                log.info("closing %s: a TLS handshake on plain-text port %d (stratum+tcp://)", self.socket_ip,
                         self.port.port)
                self.drop("TLS on a plain port")
                return
        self.feed(session, data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.tls is not None and not self.tls.handshaken and not self.tls.failed:
            log.info("closing %s on TLS port %d: the client left during the handshake (does it trust the "
                     "certificate?)", self.socket_ip, self.port.port)
        self.host.connection_closed(self)

    def pause_writing(self) -> None:
        # The sweep disconnects clients whose buffer stays above the limit; nothing to do here.
        pass

    # -- TLS ----------------------------------------------------------------------------------------

    def start_tls(self, context: Any, first: bytes) -> bytes:
        """From here on the stream is TLS (after any PROXY header): `transport` encrypts what is
        written; returns the plaintext `first` held (b"" while the handshake goes on)."""
        self.tls = self.transport = TlsTransport(self.transport, context)
        return self.decrypt(first) if first else b""

    def decrypt(self, data: bytes) -> bytes:
        assert self.tls is not None
        try:
            return self.tls.feed(data)
        except TlsError as exc:
            plain = not self.tls.handshaken and data[:1] in (b"{", b"G", b"P")
            log.info("closing %s on TLS port %d: %s%s", self.socket_ip, self.port.port, exc,
                     " (a plain-text client?)" if plain else "")
            self.transport.close()
            return b""

    # -- input and output ---------------------------------------------------------------------------

    def _proxy_data(self, data: bytes) -> None:
        buffered = self.buffer + data
        try:
            parsed = proxy.parse(buffered)
        except proxy.ProxyError as exc:
            if not self.host.config.proxy_header_required and proxy.starts_like_proxy(buffered) is False:
                self.pending_proxy = False
                self.buffer = b""
                self.host.admit(self, self.socket_ip, buffered)
                return
            self.drop(f"bad PROXY header: {exc}")
            return
        if parsed is None:
            self.buffer = buffered
            if len(buffered) > proxy.V2_MAX_PAYLOAD + 16:
                self.drop("PROXY header too long")
            return
        header, used = parsed
        self.pending_proxy = False
        self.buffer = b""
        self.check_first = False
        self.host.admit(self, header.source_ip or self.socket_ip, buffered[used:])

    def feed(self, session: Session, data: bytes) -> None:
        """Bytes from the socket to the session (it splits and bounds the lines), then its output out."""
        now = self.host.clock()
        submits, rejects = session.submits, session.rejects
        try:
            session.receive_data(data, now)
        except Exception:
            # A bug a client's line found: this connection ends, the server and the others go on.
            log.exception("session failed on a line from %s; dropping it", self.socket_ip)
            session.close_reason = "internal error"
        if session.submits != submits:
            self.host.charge_rejects(session, session.submits - submits, session.rejects - rejects, now)
        self.flush(session)

    def flush(self, session: Session) -> None:
        """Events first (a share that could not be recorded changes its reply), then the bytes."""
        if session.events:
            self.host.dispatch(self, session)
        out = session.out
        if out:
            self.transport.write(out[0] if len(out) == 1 else b"".join(out))
            out.clear()
        if not self.announced and session.working:
            self.host.announce(self, session)
        if session.close_reason is not None:
            self.host.closing(self, session)
            self.drop(session.close_reason)

    def drop(self, reason: str) -> None:
        log.debug("closing %s: %s", self.socket_ip, reason)
        self.transport.close()
