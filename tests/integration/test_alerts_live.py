"""Alerts from a live pool on the devnet to real HTTP receivers on 127.0.0.1: a found block and a
worker that goes offline reach the operator's webhook and the miner's own ntfy target, while a
receiver that never answers holds only its own queue (the miners' shares keep being accepted)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.admin.test_alerts import Receiver
from tests.integration.conftest import Fleet
from tests.integration.support import (
    ADMIN,
    Miner,
    admin_api,
    base_config,
    running_pool,
    stratum_port,
    wait_for,
    write_config,
)

pytestmark = pytest.mark.timeout(120)


async def test_block_and_offline_alerts_reach_their_targets(redis_url: str, tmp_path: Path, fleet: Fleet) -> None:
    ops, hanging = Receiver(), Receiver()
    await ops.start()
    await hanging.start()
    hanging.hang.clear()                                     # accepts the request, never answers
    try:
        data = base_config(redis_url, tmp_path)
        data["alerts"] = {
            "check_interval_seconds": 0.2, "worker_offline_minutes": 0.02,
            "targets": [
                {"name": "ops", "url": ops.url + "/hook", "backoff_seconds": 0.05},
                {"name": "alice", "kind": "ntfy", "url": ops.url + "/alice", "accounts": ["alice"],
                 "events": ["worker_offline", "worker_online", "block_found"]},
                {"name": "dead", "url": hanging.url + "/hook", "timeout_seconds": 60.0},
            ]}
        config_path = write_config(tmp_path / "pool.toml", data)
        async with running_pool(config_path) as app:
            assert app.alerts is not None
            port = stratum_port(app)
            alice = fleet.add(Miner("127.0.0.1", port, "alice.rig"))
            bob = fleet.add(Miner("127.0.0.1", port, "bob.rig"))

            def events(path: str) -> list[dict[str, object]]:
                return [json.loads(body) for p, _, body in ops.requests if p == path]

            await wait_for(lambda: any(e["event"] == "block_found" for e in events("/hook")), 30, "a block alert")
            found = next(e for e in events("/hook") if e["event"] == "block_found")
            assert any(b.block_hash == found["details"]["hash"] and b.accepted for b in app.blocks)  # type: ignore[index]
            # The dead receiver holds a request and answers none; shares go on being accepted meanwhile.
            await wait_for(lambda: hanging.requests, 10, "a request held by the dead receiver")
            before = alice.stats.accepted + bob.stats.accepted
            await wait_for(lambda: alice.stats.accepted + bob.stats.accepted >= before + 20, 20,
                           "shares accepted while a webhook hangs")
            dead = next(s for s in app.alerts.notifier.snapshot() if s.name == "dead")
            assert dead.sent == 0 and dead.failed == 0                  # still waiting on its first send
            snapshot = await app.admin.ctx.metrics.snapshot()
            sent = {t.name: t.sent for t in snapshot.alert_targets}
            assert sent["dead"] == 0 and sent["ops"] >= 1

            await alice.finish()
            await wait_for(lambda: any(e["event"] == "worker_offline" for e in events("/hook")), 20,
                           "the offline alert")
            offline = next(e for e in events("/hook") if e["event"] == "worker_offline")
            assert (offline["worker"], offline["account"]) == ("alice.rig", "alice")
            await wait_for(lambda: any(h.get("Tags") == "worker_offline" for p, h, _ in ops.requests
                                       if p == "/alice"), 10, "alice's own offline alert")
            mine = [(h["Tags"], h["Title"], body.decode()) for p, h, body in ops.requests if p == "/alice"]
            # alice's target hears only alice: her offline worker, and blocks only if she found them.
            assert ("worker_offline", "alice.rig is offline") in [(tag, title) for tag, title, _ in mine]
            assert all(body.startswith("alice.rig found block") for tag, _, body in mine if tag == "block_found")
            assert not any("bob" in title or "bob" in body for _, title, body in mine)
            assert bob.stats.accepted > 0 and not bob.disconnected
    finally:
        await ops.stop()
        await hanging.stop()


async def test_a_restarted_pool_neither_repeats_nor_misses_an_alert(redis_url: str, tmp_path: Path,
                                                                    fleet: Fleet) -> None:
    ops = Receiver()
    await ops.start()
    try:
        data = base_config(redis_url, tmp_path)
        data["alerts"] = {"check_interval_seconds": 0.2, "worker_offline_minutes": 0.02,
                          "targets": [{"name": "ops", "url": ops.url + "/hook", "events": ["worker_offline",
                                                                                             "worker_online"]}]}
        config_path = write_config(tmp_path / "pool.toml", data)

        def said() -> list[tuple[str, str]]:
            return [(e["event"], e["worker"]) for e in (json.loads(body) for _, _, body in ops.requests)]

        async with running_pool(config_path) as app:
            alice = fleet.add(Miner("127.0.0.1", stratum_port(app), "alice.rig"))
            await wait_for(lambda: alice.stats.accepted >= 3, 20, "alice's shares")
            await alice.finish()
            await wait_for(lambda: said() == [("worker_offline", "alice.rig")], 20, "the offline alert")

            async def delivered() -> bool:       # the reply is in too (a stop before it would resend)
                assert app.ledger is not None
                return await app.ledger.client.llen("{gs:pool}:alerts:outbox") == 0
            await wait_for(delivered, 10, "the outbox emptied")
        async with running_pool(config_path) as app:
            assert app.alerts is not None
            await wait_for(lambda: app.alerts.checks >= 5 and app.alerts.restored, 20, "checks after the restart")
            assert said() == [("worker_offline", "alice.rig")]                 # not said again
            fleet.add(Miner("127.0.0.1", stratum_port(app), "alice.rig"))
            await wait_for(lambda: len(said()) == 2, 20, "the back-online alert")
            assert said() == [("worker_offline", "alice.rig"), ("worker_online", "alice.rig")]
    finally:
        await ops.stop()


async def test_alerts_are_turned_on_and_retargeted_by_a_reload(redis_url: str, tmp_path: Path,
                                                               fleet: Fleet) -> None:
    ops = Receiver()
    await ops.start()
    try:
        data = base_config(redis_url, tmp_path)
        config_path = write_config(tmp_path / "pool.toml", data)
        async with running_pool(config_path) as app, admin_api(app) as api:
            assert app.alerts is not None and app.alerts.notifier.senders == []     # idle: no target
            alice = fleet.add(Miner("127.0.0.1", stratum_port(app), "alice.rig"))
            await wait_for(lambda: alice.stats.accepted >= 2, 20, "alice's shares")

            async def reload(path: str) -> list[str]:
                data["alerts"] = {"check_interval_seconds": 0.2, "worker_offline_minutes": 0.02, "targets": [
                    {"name": "ops", "url": ops.url + path, "events": ["worker_offline", "worker_online"]}]}
                write_config(config_path, data)
                status, result = await api.call("POST", "/api/v1/reload", ADMIN)
                assert status == 200 and result["ok"] and result["requires_restart"] == [], result
                return sorted(result["applied"])

            assert await reload("/first") == ["alerts.check_interval_seconds", "alerts.targets",
                                               "alerts.worker_offline_minutes"]
            checks = app.alerts.checks
            await wait_for(lambda: app.alerts.checks >= checks + 2, 10, "checks with the new interval")
            await alice.finish()

            def heard(path: str) -> list[tuple[str, str]]:
                return [(json.loads(b)["event"], json.loads(b)["worker"]) for p, _, b in ops.requests if p == path]

            await wait_for(lambda: heard("/first") == [("worker_offline", "alice.rig")], 20, "the offline alert")
            assert await reload("/second") == ["alerts.targets[0].url"]
            fleet.add(Miner("127.0.0.1", stratum_port(app), "alice.rig"))
            await wait_for(lambda: heard("/second") == [("worker_online", "alice.rig")], 20, "the online alert")
            assert heard("/first") == [("worker_offline", "alice.rig")]
            # The changed target kept its counts (the reply to the second send may still be on its way).
            await wait_for(lambda: [s.sent for s in app.alerts.notifier.snapshot()] == [2], 10, "two sends counted")
    finally:
        await ops.stop()
