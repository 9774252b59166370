"""Delivering alerts: one queue and one sender task per target, off the Stratum path.

`offer(alert)` is what the monitor calls: O(1), never waits, never raises; it applies the target's
filter (events, accounts) and rate limit (a token bucket; what exceeds it is dropped and counted) and
queues the alert. Each target's task posts its queue in order in the target's format (generic JSON
webhook, Discord, Telegram bot API, ntfy), retrying connection failures, timeouts, 5xx and 429 with
exponential backoff (429's Retry-After honoured); any other 4xx is final. A dead, slow or failing
receiver holds only its own queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Literal

import aiohttp
import msgspec

from pool.aio import cancel_and_wait
from pool.config.alerts import ACCOUNT_EVENTS, AlertTarget

log = logging.getLogger("geostratum.alerts")

Severity = Literal["info", "warning", "critical"]
NTFY_PRIORITY = {"info": "default", "warning": "high", "critical": "urgent"}
DISCORD_MAX = 2000
TELEGRAM_MAX = 4096
JSON = {"Content-Type": "application/json"}


class Alert(msgspec.Struct, frozen=True, kw_only=True):
    """One notification, as the generic webhook receives it (JSON)."""

    event: str                          # see pool.config.alerts.EVENTS
    severity: Severity
    title: str
    message: str
    at: float                           # unix seconds
    pool: str = ""
    account: str = ""                   # account events: whose
    worker: str = ""
    details: dict[str, Any] = msgspec.field(default_factory=dict)


Delivered = Callable[[str, "Alert"], Awaitable[None]]      # (target name, alert): the target is through with it


class TargetStats(msgspec.Struct, kw_only=True):
    name: str
    kind: str
    sent: int = 0
    failed: int = 0                     # gave up (attempts exhausted or a final 4xx)
    retries: int = 0
    rate_limited: int = 0               # dropped by the target's rate limit
    queue_full: int = 0                 # dropped because the queue was full
    queued: int = 0
    last_error: str = ""


def _ascii(text: str) -> str:
    return text.encode("ascii", "replace").decode()


def render(target: AlertTarget, alert: Alert, url: str, token: str = "") -> tuple[str, bytes, dict[str, str]]:
    """(URL, body, headers) of one alert in the target's format."""
    text = f"{alert.title}\n{alert.message}"
    if target.kind == "discord":
        body = {"content": f"**{alert.title}**\n{alert.message}"[:DISCORD_MAX], "username": alert.pool or "Geostratum",
                "allowed_mentions": {"parse": []}}
        return url, msgspec.json.encode(body), JSON
    if target.kind == "telegram":
        body = {"chat_id": target.chat_id, "text": text[:TELEGRAM_MAX], "disable_web_page_preview": True}
        return f"{url.rstrip('/')}/bot{token}/sendMessage", msgspec.json.encode(body), JSON
    if target.kind == "ntfy":
        headers = {"Title": _ascii(alert.title)[:200], "Priority": NTFY_PRIORITY[alert.severity],
                   "Tags": alert.event, "Content-Type": "text/plain; charset=utf-8"}
        return url, alert.message.encode(), headers
    return url, msgspec.json.encode(alert), JSON


class TargetSender:
    def __init__(self, target: AlertTarget, environ: Mapping[str, str] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        env = os.environ if environ is None else environ
        self.target = target
        self.url = target.resolved_url(dict(env))
        self.token = env.get(target.token_env, "") if target.token_env else ""
        self.stats = TargetStats(name=target.name, kind=target.kind)
        self.queue: asyncio.Queue[Alert] = asyncio.Queue(target.queue_size)
        self._clock = clock
        self._tokens = float(target.rate_limit_burst)
        self._tokens_at = clock()
        self._events = set(target.events)
        self._accounts = set(target.accounts)
        self.current: Alert | None = None       # the alert being sent

    def wants(self, alert: Alert) -> bool:
        if alert.event not in self._events:
            return False
        if not self._accounts:
            return True                 # the operator's target
        return alert.event in ACCOUNT_EVENTS and alert.account in self._accounts

    def admit(self, alert: Alert) -> bool:
        """Whether the target takes the alert: its filter, its rate limit (a True spends a token) and
        room in its queue. The caller then `put`s it."""
        if not self.wants(alert):
            return False
        now = self._clock()
        rate = self.target.rate_limit_per_minute / 60
        self._tokens = min(float(self.target.rate_limit_burst), self._tokens + (now - self._tokens_at) * rate)
        self._tokens_at = now
        if self._tokens < 1:
            self.stats.rate_limited += 1
            log.warning("alert target %s: rate limit reached, %s dropped", self.target.name, alert.event)
            return False
        if self.queue.full():
            self.stats.queue_full += 1
            log.warning("alert target %s: queue full, %s dropped", self.target.name, alert.event)
            return False
        self._tokens -= 1
        return True

    def put(self, alert: Alert) -> bool:
        try:
            self.queue.put_nowait(alert)
        except asyncio.QueueFull:
            self.stats.queue_full += 1
            log.warning("alert target %s: queue full, %s dropped", self.target.name, alert.event)
            return False
        self.stats.queued = self.queue.qsize()
        return True

    def offer(self, alert: Alert) -> bool:
        return self.admit(alert) and self.put(alert)

    async def run(self, session: aiohttp.ClientSession, on_done: Delivered | None = None) -> None:
        while True:
            alert = self.current = await self.queue.get()
            try:
                await self.deliver(session, alert)
            except Exception:             # never let one alert stop the target's queue
                log.exception("alert target %s: delivering %s failed", self.target.name, alert.event)
            self.current = None
            self.stats.queued = self.queue.qsize()
            if on_done is not None:
                try:
                    await on_done(self.target.name, alert)
                except Exception:
                    log.exception("alert target %s: after delivering %s", self.target.name, alert.event)

    async def deliver(self, session: aiohttp.ClientSession, alert: Alert) -> bool:
        target = self.target
        url, body, headers = render(target, alert, self.url, self.token)
        timeout = aiohttp.ClientTimeout(total=target.timeout_seconds)
        for attempt in range(target.max_attempts):
            retry_after = None
            try:
                async with session.post(url, data=body, headers=headers, timeout=timeout,
                                        allow_redirects=False) as response:
                    await response.read()
                    if 200 <= response.status < 300:
                        self.stats.sent += 1
                        return True
                    error = f"HTTP {response.status}"
                    if response.status == 429:
                        retry_after = _seconds(response.headers.get("Retry-After"))
                    elif 400 <= response.status < 500 and response.status != 408:
                        self.stats.failed += 1
                        self.stats.last_error = error
                        log.warning("alert target %s refused %s: %s (not retried)", target.name, alert.event, error)
                        return False
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                error = type(exc).__name__
            self.stats.last_error = error
            if attempt + 1 < target.max_attempts:
                self.stats.retries += 1
                delay = min(target.max_backoff_seconds, target.backoff_seconds * 2**attempt)
                await asyncio.sleep(min(target.max_backoff_seconds, retry_after) if retry_after else delay)
        self.stats.failed += 1
        log.warning("alert target %s: %s not delivered after %d attempts (%s)", target.name, alert.event,
                    target.max_attempts, self.stats.last_error)
        return False


def _drain(queue: asyncio.Queue[Alert]) -> list[Alert]:
    out = []
    while not queue.empty():
        out.append(queue.get_nowait())
    return out


def _seconds(value: str | None) -> float | None:
    with contextlib.suppress(TypeError, ValueError):
        seconds = float(value)  # type: ignore[arg-type]
        if seconds >= 0:
            return seconds
    return None


class Notifier:
    """Every target's sender; `offer` fans an alert out to those that want it. `on_done(target, alert)`
    is awaited once a target is through with an alert (sent, or given up)."""

    def __init__(self, targets: list[AlertTarget], environ: Mapping[str, str] | None = None,
                 on_done: Delivered | None = None) -> None:
        self.environ = environ
        self.senders = [TargetSender(t, environ) for t in targets]
        self.on_done = on_done
        self._session: aiohttp.ClientSession | None = None
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._retired: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self._session = aiohttp.ClientSession()
        for sender in self.senders:
            self._run(sender)

    def _run(self, sender: TargetSender) -> None:
        assert self._session is not None
        self._tasks[sender.target.name] = asyncio.create_task(sender.run(self._session, self._done),
                                                              name=f"alerts-{sender.target.name}")

    async def _done(self, target: str, alert: Alert) -> None:
        if self.on_done is not None:
            await self.on_done(target, alert)

    async def stop(self) -> None:
        await cancel_and_wait(*self._tasks.values(), *self._retired)
        self._tasks, self._retired = {}, []
        if self._session is not None:
            await self._session.close()
            self._session = None

    def reconfigure(self, targets: list[AlertTarget]) -> None:
        """A config reload: an unchanged target keeps its sender (queue, rate limit, counts); a changed
        one gets a new sender that takes over the old one's queue (the alert being sent first) and
        counts; a removed one is dropped with its queue."""
        old = {s.target.name: s for s in self.senders}
        senders = []
        for target in targets:
            sender = old.pop(target.name, None)
            if sender is None or sender.target != target:
                fresh = TargetSender(target, self.environ)
                if sender is not None:
                    self._retire(sender.target.name)
                    fresh.stats = msgspec.structs.replace(sender.stats, kind=target.kind)
                    for alert in ([sender.current] if sender.current else []) + _drain(sender.queue):
                        fresh.put(alert)
                sender = fresh
                if self._session is not None:
                    self._run(sender)
            senders.append(sender)
        for name in old:
            self._retire(name)
        self.senders = senders

    def _retire(self, name: str) -> None:
        task = self._tasks.pop(name, None)
        if task is not None:
            task.cancel()
            self._retired = [t for t in self._retired if not t.done()] + [task]

    def offer(self, alert: Alert) -> int:
        """Queue the alert for every target that wants it; how many took it."""
        return sum(self.put(name, alert) for name in self.admit(alert))

    def admit(self, alert: Alert) -> list[str]:
        """The targets that take the alert (filter, rate limit, room); `put` it to each of them then."""
        log.info("alert %s: %s", alert.event, alert.title)
        return [sender.target.name for sender in self.senders if sender.admit(alert)]

    def put(self, target: str, alert: Alert) -> bool:
        """Queue an admitted alert (or one a previous run had not delivered); False: no such target,
        or its queue is full."""
        sender = next((s for s in self.senders if s.target.name == target), None)
        return sender is not None and sender.put(alert)

    def snapshot(self) -> list[TargetStats]:
        return [msgspec.structs.replace(s.stats) for s in self.senders]
