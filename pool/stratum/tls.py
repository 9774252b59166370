"""TLS Stratum ports (stratum+ssl://): a server context per port, and TLS over a plain transport.

TLS is layered over the TCP transport here (ssl.MemoryBIO + SSLObject, the same machinery asyncio's
own TLS uses) rather than by the event loop, so a PROXY header that a balancer sends in clear before
the ClientHello is read first, and the bytes that came with it start the handshake. `TlsTransport`
stands in for the transport: what the server writes is encrypted, `feed` turns received bytes into
plaintext. A reload swaps the port's context: new connections get the new certificate, open ones
keep theirs.
"""

from __future__ import annotations

import contextlib
import logging
import ssl
from typing import Any

from pool.config.errors import ConfigError
from pool.config.stratum import PortConfig

log = logging.getLogger("pool.stratum")

READ_CHUNK = 65536
# First bytes of a TLS record carrying a handshake (ClientHello): content type 22, version 3.x.
TLS_HANDSHAKE_START = b"\x16\x03"


class TlsError(Exception):
    """The peer did not speak TLS (or failed the handshake): close the connection, log why."""


def server_context(cert_file: str, key_file: str) -> ssl.SSLContext:
    """TLS 1.2 or newer, the system's default ciphers; no client certificates asked for."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_file, key_file)
    return context


def port_contexts(ports: list[PortConfig]) -> dict[int, ssl.SSLContext]:
    """A server context for every TLS port, keyed by id(port): all load or ConfigError names the first
    port whose certificate or key does not (so a refused reload changes nothing)."""
    contexts = {}
    for i, port in enumerate(ports):
        if port.tls:
            try:
                contexts[id(port)] = server_context(port.tls_cert_file, port.tls_key_file)
            except (OSError, ValueError) as exc:       # ssl.SSLError is an OSError
                raise ConfigError(f"stratum.ports[{i}].tls_cert_file",
                                  f"certificate and key of port {port.port} do not load: {exc}") from None
    return contexts


def looks_like_tls(data: bytes) -> bool:
    return data[:2] == TLS_HANDSHAKE_START


class TlsTransport:
    """A transport-like object over a plain one (write, close, abort, pause/resume, extra info)."""

    __slots__ = ("_closing", "_incoming", "_outgoing", "_pending", "failed", "handshaken", "raw", "tls")

    def __init__(self, raw: Any, context: ssl.SSLContext) -> None:
        self.raw = raw
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self.tls = context.wrap_bio(self._incoming, self._outgoing, server_side=True)
        self.handshaken = False
        self.failed = False                  # a TlsError was raised (and logged by the server)
        self._pending: list[bytes] = []      # written before the handshake finished
        self._closing = False

    def feed(self, data: bytes) -> bytes:
        """Received bytes -> the plaintext they complete (b"" during the handshake). TlsError when
        the peer is not speaking TLS or the handshake fails."""
        self._incoming.write(data)
        try:
            if not self.handshaken:
                try:
                    self.tls.do_handshake()
                except ssl.SSLWantReadError:
                    return b""
                finally:
                    self._flush()
                self.handshaken = True
                if self._pending:
                    pending, self._pending = self._pending, []
                    self.write(b"".join(pending))
            chunks = []
            while True:
                try:
                    chunk = self.tls.read(READ_CHUNK)
                except ssl.SSLWantReadError:
                    break
                except ssl.SSLZeroReturnError:   # the peer's close_notify
                    self.close()
                    break
                if not chunk:                    # b"" (not "want read"): the peer's close_notify
                    self.close()
                    break
                chunks.append(chunk)
            self._flush()
            return b"".join(chunks)
        except ssl.SSLError as exc:
            self.failed = True
            raise TlsError(exc.reason or exc.__class__.__name__) from None

    def _flush(self) -> None:
        data = self._outgoing.read()
        if data and not self.raw.is_closing():
            self.raw.write(data)

    # -- the transport interface the server uses ---------------------------------------------------
    def write(self, data: bytes) -> None:
        if self._closing:
            return
        if not self.handshaken:
            self._pending.append(data)
            return
        try:
            self.tls.write(data)
        except ssl.SSLError as exc:
            log.debug("TLS write failed: %s", exc)
            self.raw.close()
            return
        self._flush()

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        if self.handshaken:
            with contextlib.suppress(ssl.SSLError):
                self.tls.unwrap()                # queues our close_notify
            self._flush()
        self.raw.close()

    def abort(self) -> None:
        self._closing = True
        self.raw.abort()

    def is_closing(self) -> bool:
        return self._closing or bool(self.raw.is_closing())

    def pause_reading(self) -> None:
        self.raw.pause_reading()

    def resume_reading(self) -> None:
        self.raw.resume_reading()

    def get_write_buffer_size(self) -> int:
        return int(self.raw.get_write_buffer_size()) + self._outgoing.pending

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "ssl_object":
            return self.tls
        if name == "cipher":
            return self.tls.cipher() if self.handshaken else default
        return self.raw.get_extra_info(name, default)
