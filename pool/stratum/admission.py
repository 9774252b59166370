"""Connection admission (sans-IO): per-IP counts, the ban list, trusted load-balancer addresses, the
per-address reject budget that earns a ban, and who makes room when the server is full."""

from __future__ import annotations

import ipaddress
from collections import deque
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import msgspec

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
T = TypeVar("T")


class Ban(msgspec.Struct, frozen=True):
    target: str          # an address or a CIDR
    until: float         # unix seconds; 0 = permanent
    reason: str
    created_at: float


class BanList:
    """Addresses and networks refused at connect. Exact addresses are a dict lookup; networks a scan
    over the (short) list of CIDR bans."""

    def __init__(self) -> None:
        self._addresses: dict[str, Ban] = {}
        self._networks: dict[str, tuple[IPNetwork, Ban]] = {}

    def add(self, target: str, seconds: float, reason: str, now: float) -> Ban:
        network = ipaddress.ip_network(target, strict=False)   # ValueError names the bad input
        until = now + seconds if seconds > 0 else 0.0
        if network.num_addresses == 1:
            key = str(network.network_address)
            ban = Ban(key, until, reason, now)
            self._addresses[key] = ban
        else:
            key = str(network)
            ban = Ban(key, until, reason, now)
            self._networks[key] = (network, ban)
        return ban

    def remove(self, target: str) -> bool:
        network = ipaddress.ip_network(target, strict=False)
        key = str(network.network_address) if network.num_addresses == 1 else str(network)
        return (self._addresses.pop(key, None) or self._networks.pop(key, None)) is not None

    def banned(self, ip: str, now: float) -> Ban | None:
        ban = self._addresses.get(ip)
        if ban is not None:
            if not ban.until or ban.until > now:
                return ban
            del self._addresses[ip]
        if self._networks:
            try:
                address = ipaddress.ip_address(ip)
            except ValueError:
                return None
            for key, (network, ban) in list(self._networks.items()):
                if ban.until and ban.until <= now:
                    del self._networks[key]
                elif address.version == network.version and address in network:
                    return ban
        return None

    def entries(self, now: float) -> list[Ban]:
        live = [b for b in self._addresses.values() if not b.until or b.until > now]
        live += [b for _, b in self._networks.values() if not b.until or b.until > now]
        return sorted(live, key=lambda b: b.created_at)


class IpCounter:
    """Open connections per source address."""

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}

    def acquire(self, ip: str, limit: int) -> bool:
        count = self._counts.get(ip, 0)
        if count >= limit:
            return False
        self._counts[ip] = count + 1
        return True

    def release(self, ip: str) -> None:
        count = self._counts.get(ip, 0) - 1
        if count > 0:
            self._counts[ip] = count
        else:
            self._counts.pop(ip, None)

    def count(self, ip: str) -> int:
        return self._counts.get(ip, 0)

    def __len__(self) -> int:
        return len(self._counts)


class TrustedProxies:
    def __init__(self, specs: list[str]) -> None:
        self._networks = [ipaddress.ip_network(spec, strict=False) for spec in specs]
        self._cache: dict[str, bool] = {}

    def __bool__(self) -> bool:
        return bool(self._networks)

    def overlapping(self, network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> str | None:
        """The first trusted proxy network sharing an address with `network` (None: none does)."""
        for trusted in self._networks:
            if trusted.version == network.version and trusted.overlaps(network):  # type: ignore[arg-type]
                return str(trusted)
        return None

    def __contains__(self, ip: Any) -> bool:
        cached = self._cache.get(ip)
        if cached is None:
            try:
                address = ipaddress.ip_address(ip)
                cached = any(address.version == n.version and address in n for n in self._networks)
            except ValueError:
                cached = False
            if len(self._cache) < 10000:
                self._cache[ip] = cached
        return cached


class RejectBudget:
    """Rejected submits per source address within a window, summed over its connections (sans-IO).

    An address holds state only while it has rejects in its current window (`prune` drops the ended
    ones), so honest addresses cost nothing here."""

    def __init__(self) -> None:
        self._windows: dict[str, list[float]] = {}   # ip -> [window start, submits, rejects]

    def charge(self, ip: str, submits: int, rejects: int, now: float, *, window: float, limit: int,
               ratio: float) -> bool:
        """Count one read's submits and rejects; True when the address is past its budget: at least
        `limit` rejects within `window` seconds that make up at least `ratio` of its submits."""
        entry = self._windows.get(ip)
        if entry is None or now - entry[0] > window:
            if not rejects:
                if entry is not None:
                    del self._windows[ip]
                return False
            entry = self._windows[ip] = [now, 0.0, 0.0]
        entry[1] += submits
        entry[2] += rejects
        return entry[2] >= limit and entry[2] >= ratio * entry[1]

    def forget(self, ip: str) -> None:
        self._windows.pop(ip, None)

    def prune(self, now: float, window: float) -> None:
        for ip in [ip for ip, entry in self._windows.items() if now - entry[0] > window]:
            del self._windows[ip]

    def __len__(self) -> int:
        return len(self._windows)


class OldestFirst(Generic[T]):
    """Items in arrival order, for giving up the oldest that still qualifies (sans-IO). Entries that
    no longer qualify are skipped when reached and dropped by `prune`."""

    def __init__(self) -> None:
        self._queue: deque[T] = deque()

    def add(self, item: T) -> None:
        self._queue.append(item)

    def pop_oldest(self, eligible: Callable[[T], bool]) -> T | None:
        queue = self._queue
        while queue:
            item = queue.popleft()
            if eligible(item):
                return item
        return None

    def prune(self, keep: Callable[[T], bool]) -> None:
        self._queue = deque(item for item in self._queue if keep(item))

    def __len__(self) -> int:
        return len(self._queue)
