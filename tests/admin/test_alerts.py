"""Alerts: the rules over snapshots (hand-made truths), and delivery to a real HTTP receiver on
127.0.0.1 in every format, through a receiver that is down, slow, answers 500, 429 or 400."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import msgspec
import pytest
from aiohttp import web

from pool.admin.alerts import AlertRules
from pool.admin.interfaces import (
    AccountSummary,
    BlockInfo,
    ComponentHealth,
    HashrateWindows,
    HealthStatus,
    WorkerSummary,
)
from pool.admin.notify import Alert, Notifier, TargetSender, TargetStats
from pool.config import ConfigError, from_dict
from pool.config.alerts import AlertsConfig, AlertTarget
from tests.support.redis_server import free_port
from tests.support.waiting import wait_for

T0 = 1_800_000_000.0


def worker(name: str, connections: int, last: float | None) -> WorkerSummary:
    return WorkerSummary(name=name, account=name.split(".")[0], connections=connections, hashrate=HashrateWindows(),
                         difficulty=1.0, accepted=1, rejected=0, last_share_at=last)


def account(name: str, short: float, long: float) -> AccountSummary:
    return AccountSummary(account=name, workers=1, hashrate=HashrateWindows(m15=short, h6=long), accepted=1,
                          rejected=0)


def block(hash_: str, status: str, height: int = 100) -> BlockInfo:
    return BlockInfo(height=height, hash=hash_, found_at=T0, worker="alice.rig", account="alice",
                     status=status, reward_sat=312_500_000)  # type: ignore[arg-type]


# -- rules -------------------------------------------------------------------------------------


def test_worker_offline_after_n_minutes_once_then_back_online() -> None:
    rules = AlertRules(AlertsConfig(worker_offline_minutes=10), "pool", started_at=T0)
    assert rules.observe_workers([worker("alice.a", 1, T0), worker("bob.b", 1, T0)], T0) == []
    # alice.a loses its connection; 9 min 59 s after its last share nothing is said yet.
    assert rules.observe_workers([worker("alice.a", 0, T0), worker("bob.b", 1, T0 + 599)], T0 + 599) == []
    alerts = rules.observe_workers([worker("alice.a", 0, T0), worker("bob.b", 1, T0 + 600)], T0 + 600)
    assert [(a.event, a.worker, a.account) for a in alerts] == [("worker_offline", "alice.a", "alice")]
    assert "10 min" in alerts[0].message and alerts[0].details["last_share_at"] == T0
    assert rules.observe_workers([worker("alice.a", 0, T0)], T0 + 900) == []        # said once
    back = rules.observe_workers([worker("alice.a", 1, T0 + 950)], T0 + 950)
    assert [a.event for a in back] == ["worker_online"]
    # A worker this monitor never saw mining (a day-old record at start) is not announced.
    late = AlertRules(AlertsConfig(worker_offline_minutes=10), started_at=T0)
    assert late.observe_workers([worker("old.rig", 0, T0 - 86_000)], T0 + 3600) == []
    # ... but one that mined shortly before the monitor started is.
    assert [a.worker for a in late.observe_workers([worker("new.rig", 0, T0 - 60)], T0 + 600)] == ["new.rig"]


def test_hashrate_drop_by_x_percent_once_and_re_armed_on_recovery() -> None:
    rules = AlertRules(AlertsConfig(hashrate_drop_percent=50), started_at=T0)
    assert rules.observe_accounts([account("alice", 51.0, 100.0)], T0) == []           # down 49 %
    alerts = rules.observe_accounts([account("alice", 49.0, 100.0)], T0 + 30)          # down 51 %
    assert [(a.event, a.account) for a in alerts] == [("hashrate_drop", "alice")]
    assert alerts[0].details["long_window"] == "6h" and "51 %" in alerts[0].title
    assert rules.observe_accounts([account("alice", 10.0, 100.0)], T0 + 60) == []
    assert rules.observe_accounts([account("alice", 80.0, 100.0)], T0 + 90) == []       # recovered: re-armed
    assert len(rules.observe_accounts([account("alice", 20.0, 100.0)], T0 + 120)) == 1
    assert rules.observe_accounts([account("idle", 0.0, 0.0)], T0) == []                 # nothing to drop from


def test_blocks_found_orphaned_and_rejected_after_a_first_look() -> None:
    rules = AlertRules(AlertsConfig(), started_at=T0)
    assert rules.observe_blocks([block("aa", "confirmed")], T0) == []         # what exists is only learnt
    found = rules.observe_blocks([block("bb", "submitted", 101), block("aa", "confirmed")], T0 + 1)
    assert [(a.event, a.details["height"], a.account) for a in found] == [("block_found", 101, "alice")]
    assert rules.observe_blocks([block("bb", "pending", 101)], T0 + 2) == []    # still fine
    orphaned = rules.observe_blocks([block("bb", "orphaned", 101)], T0 + 3)
    assert [a.event for a in orphaned] == ["block_orphaned"]
    rejected = rules.observe_blocks([block("cc", "rejected", 102)], T0 + 4)
    assert [(a.event, a.severity) for a in rejected] == [("block_rejected", "critical")]


def test_node_and_redis_down_and_up_and_a_stale_database() -> None:
    rules = AlertRules(AlertsConfig(geo_stale_days=45), started_at=T0)

    def health(redis_ok: bool, node_ok: bool) -> HealthStatus:
        return HealthStatus(ok=redis_ok and node_ok, components=[
            ComponentHealth(name="redis", ok=redis_ok, detail="connection refused"),
            ComponentHealth(name="node:local", ok=node_ok), ComponentHealth(name="ledger", ok=False)])

    assert rules.observe_health(health(True, True), T0) == []
    assert [a.event for a in rules.observe_health(health(False, True), T0 + 1)] == ["redis_down"]
    assert rules.observe_health(health(False, True), T0 + 2) == []
    assert sorted(a.event for a in rules.observe_health(health(True, False), T0 + 3)) == ["node_down", "redis_up"]
    # T0 is 2027-01-15: a build of 2026-11-30 is 46 days old, once a day.
    assert rules.observe_geo("DB-IP City Lite", "2026-12-01", T0) == []
    stale = rules.observe_geo("DB-IP City Lite", "2026-11-30", T0)
    assert [(a.event, a.details["age_days"]) for a in stale] == [("geo_stale", 46)]
    assert rules.observe_geo("DB-IP City Lite", "2026-11-30", T0 + 3600) == []
    assert len(rules.observe_geo("DB-IP City Lite", "2026-11-30", T0 + 86_400)) == 1


def test_config_errors_name_the_key() -> None:
    target = {"name": "ops", "url": "http://127.0.0.1:1/hook"}
    for bad, key in [({"targets": [{**target, "kind": "email"}]}, "alerts.targets[0].kind"),
                     ({"targets": [{**target, "url": "ftp://x"}]}, "alerts.targets[0].url"),
                     ({"targets": [{"name": "ops"}]}, "alerts.targets[0].url"),
                     ({"targets": [{**target, "events": ["coffee"]}]}, "alerts.targets[0].events[0]"),
                     ({"targets": [{**target, "kind": "telegram"}]}, "alerts.targets[0].chat_id"),
                     ({"targets": [target, target]}, "alerts.targets[1].name"),
                     ({"targets": [{**target, "url": "", "url_env": "GS_TEST_UNSET_HOOK"}]},
                      "alerts.targets[0].url_env"),
                     ({"hashrate_drop_percent": 120}, "alerts.hashrate_drop_percent"),
                     ({"hashrate_drop_short_window": "6h"}, "alerts.hashrate_drop_short_window")]:
        with pytest.raises(ConfigError) as error:
            from_dict({"alerts": bad})
        assert error.value.key == key, (bad, error.value)


# -- delivery ----------------------------------------------------------------------------------


class Receiver:
    """A real HTTP server on 127.0.0.1: records what it gets, answers per a script of statuses."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self.script: list[int] = []            # statuses to answer in turn (then 200)
        self.hang = asyncio.Event()            # set: answer; clear: hold requests (a slow receiver)
        self.hang.set()
        self.runner: web.AppRunner | None = None
        self.port = 0

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append((request.path, dict(request.headers), await request.read()))
        await self.hang.wait()
        status = self.script.pop(0) if self.script else 200
        headers = {"Retry-After": "0"} if status == 429 else {}
        return web.Response(status=status, text="ok" if status == 200 else "no", headers=headers)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = self.runner.addresses[0][1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def stop(self) -> None:
        self.hang.set()
        if self.runner is not None:
            await self.runner.cleanup()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    server = Receiver()
    await server.start()
    yield server
    await server.stop()


def target(url: str, **fields: Any) -> AlertTarget:
    values: dict[str, Any] = {"name": "t", "url": url, "backoff_seconds": 0.01, "max_backoff_seconds": 0.05,
                              "timeout_seconds": 2.0}
    values.update(fields)
    made = AlertTarget(**values)
    made.validate("t", environ={"BOT": "123:abc"})
    return made


ALERT = Alert(event="worker_offline", severity="warning", title="alice.rig is offline", message="no shares",
              at=T0, pool="pool", account="alice", worker="alice.rig")


async def test_every_format_reaches_a_real_receiver(receiver: Receiver) -> None:
    targets = [target(receiver.url + "/hook", name="json"), target(receiver.url + "/discord", name="d", kind="discord"),
               target(receiver.url, name="tg", kind="telegram", chat_id="42", token_env="BOT"),
               target(receiver.url + "/alice-rigs", name="n", kind="ntfy")]
    notifier = Notifier(targets, environ={"BOT": "123:abc"})
    await notifier.start()
    try:
        assert notifier.offer(ALERT) == 4
        await wait_for(lambda: len(receiver.requests) == 4, 10, "four deliveries")
        await wait_for(lambda: sum(s.sent for s in notifier.snapshot()) == 4, 10, "four sends counted")
    finally:
        await notifier.stop()
    got = {path: (headers, body) for path, headers, body in receiver.requests}
    assert msgspec.json.decode(got["/hook"][1], type=Alert) == ALERT
    discord = json.loads(got["/discord"][1])
    assert discord["content"] == "**alice.rig is offline**\nno shares" and discord["allowed_mentions"] == {"parse": []}
    telegram = json.loads(got["/bot123:abc/sendMessage"][1])
    assert telegram == {"chat_id": "42", "text": "alice.rig is offline\nno shares", "disable_web_page_preview": True}
    headers, body = got["/alice-rigs"]
    assert body == b"no shares" and headers["Title"] == "alice.rig is offline" and headers["Priority"] == "high"
    assert headers["Tags"] == "worker_offline"


async def test_500_then_success_is_retried_and_400_is_final(receiver: Receiver) -> None:
    sender = TargetSender(target(receiver.url, max_attempts=4))
    async with aiohttp.ClientSession() as session:
        receiver.script = [500, 503, 429]
        assert await sender.deliver(session, ALERT) is True
        assert len(receiver.requests) == 4 and sender.stats.retries == 3 and sender.stats.sent == 1
        receiver.script = [400]
        assert await sender.deliver(session, ALERT) is False
        assert len(receiver.requests) == 5 and sender.stats.failed == 1 and sender.stats.last_error == "HTTP 400"
        receiver.script = [500] * 10
        assert await sender.deliver(session, ALERT) is False
        assert len(receiver.requests) == 9 and sender.stats.failed == 2


async def test_a_receiver_that_is_down_or_slow_is_retried_then_given_up() -> None:
    dead = TargetSender(target(f"http://127.0.0.1:{free_port()}/hook", max_attempts=3))   # nothing listens
    async with aiohttp.ClientSession() as session:
        assert await dead.deliver(session, ALERT) is False
    assert (dead.stats.failed, dead.stats.retries, dead.stats.sent) == (1, 2, 0)
    assert dead.stats.last_error == "ClientConnectorError"


async def test_slow_receiver_times_out_per_attempt(receiver: Receiver) -> None:
    receiver.hang.clear()                                       # holds every request
    slow = TargetSender(target(receiver.url, max_attempts=2, timeout_seconds=0.2))
    async with aiohttp.ClientSession() as session:
        assert await slow.deliver(session, ALERT) is False
    assert len(receiver.requests) == 2 and slow.stats.last_error == "TimeoutError"


async def test_rate_limit_filter_and_full_queue_drop_and_count(receiver: Receiver) -> None:
    now = [0.0]
    limited = TargetSender(target(receiver.url, rate_limit_per_minute=60, rate_limit_burst=3), clock=lambda: now[0])
    assert [limited.offer(ALERT) for _ in range(4)] == [True, True, True, False]
    assert limited.stats.rate_limited == 1
    now[0] = 1.0                                                # one token back after a second
    assert limited.offer(ALERT) is True
    mine = TargetSender(target(receiver.url, accounts=["bob"]))
    assert mine.offer(ALERT) is False                           # alice's alert, bob's target
    assert mine.offer(msgspec.structs.replace(ALERT, account="bob")) is True
    assert mine.offer(Alert(event="redis_down", severity="critical", title="t", message="m", at=T0)) is False
    tiny = TargetSender(target(receiver.url, queue_size=1, rate_limit_burst=5))
    assert [tiny.offer(ALERT), tiny.offer(ALERT)] == [True, False] and tiny.stats.queue_full == 1


async def test_a_reload_moves_a_changed_targets_queue_to_its_new_sender(receiver: Receiver) -> None:
    stuck = Receiver()
    await stuck.start()
    stuck.hang.clear()                                          # takes the first request, never answers
    kept = target(receiver.url + "/kept", name="kept")
    notifier = Notifier([target(stuck.url + "/old", name="moved"), kept])
    await notifier.start()
    try:
        alerts = [msgspec.structs.replace(ALERT, title=f"alert {i}") for i in range(3)]
        for alert in alerts:
            assert notifier.offer(alert) == 2
        await wait_for(lambda: stuck.requests, 5, "the stuck send")
        unchanged = notifier.senders[1]
        notifier.reconfigure([target(receiver.url + "/new", name="moved"), kept])
        assert notifier.senders[1] is unchanged                 # its queue and rate limit go on as they were
        await wait_for(lambda: len(receiver.requests) == 6, 5, "every alert at the new URL and the kept target")
        titles = [json.loads(body)["title"] for path, _, body in receiver.requests if path == "/new"]
        assert titles == ["alert 0", "alert 1", "alert 2"]     # the one being sent first, then the queue
        await wait_for(lambda: notifier.snapshot()[0].sent == 3, 5, "the new sender's replies")
        notifier.reconfigure([])                                # a removed target: nothing goes there any more
        assert notifier.offer(ALERT) == 0 and notifier.snapshot() == []
    finally:
        await notifier.stop()
        await stuck.stop()


async def test_deliveries_are_on_metrics(pool_data: Any) -> None:
    from pool.admin.metrics import render

    snap = msgspec.structs.replace(await pool_data.snapshot(),
                                   alert_targets=[TargetStats(name="ops", kind="webhook", sent=3, failed=1)])
    text = render(snap, admin_requests={}, rate_limited=0)
    assert 'geostratum_alerts_total{target="ops",outcome="sent"} 3' in text
    assert 'geostratum_alerts_total{target="ops",outcome="failed"} 1' in text


def test_a_drop_within_the_short_windows_interval_is_not_announced() -> None:
    """With figures, the short window's upper 95 % bound must fall below the threshold: a drop the
    share count cannot tell from luck makes no alert, a drop beyond the interval does."""
    from pool.shares.hashrate import hashrate_figure

    def summary(short_shares: int, long_shares: int) -> AccountSummary:
        # Shares of difficulty 1: hashrate = shares x 2^32 / seconds.
        windows = HashrateWindows(m15=hashrate_figure(900, T0 - 900, T0, float(short_shares), short_shares),
                                  h6=hashrate_figure(21_600, T0 - 21_600, T0, float(long_shares), long_shares))
        return AccountSummary(account="a", workers=1, hashrate=windows, accepted=1, rejected=0)

    rules = AlertRules(AlertsConfig(hashrate_drop_percent=50), started_at=T0)
    # 240 shares in 6 h is 10 expected in 15 min; 3 seen is down 70 %, but 3 shares' upper bound
    # (7.75, Poisson 95 %) is above half of 10: no alert.
    few = summary(3, 240)
    assert few.hashrate.m15.high is not None and few.hashrate.m15.high > 0.5 * few.hashrate.h6.hashrate
    assert rules.observe_accounts([few], T0) == []
    # 14,400 in 6 h is 600 expected in 15 min; 90 seen (upper bound about 110) is a real drop.
    many = summary(90, 14_400)
    assert [a.event for a in rules.observe_accounts([many], T0 + 30)] == ["hashrate_drop"]
