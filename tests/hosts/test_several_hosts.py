"""The pool over several hosts, for real: three network-namespace hosts each running
`geostratum run --workers 2`, a Redis Cluster of three masters with replicas across them, HAProxy from
the distribution in front (PROXY v2 to every host), and miners on real public addresses mining through
it (tests/hosts/poollab.py has the layout; docker/hosts/ the configurations it runs).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.hosts.poollab import PoolLab, unavailable_reason, wait_until

pytestmark = pytest.mark.timeout(240)

# 18 miners in six regions (real addresses the .mmdb places there), six per host under leastconn.
REGIONS = {"DE": 3, "US/Texas": 3, "JP": 3, "BR": 3, "KZ": 3, "CA": 3}


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[PoolLab]:
    reason = unavailable_reason()
    if reason:
        pytest.skip(f"several-hosts lab cannot run here: {reason}")
    lab = PoolLab(tmp_path, REGIONS)
    lab.start()
    try:
        yield lab
    finally:
        print(lab.logs_tail())      # shown when the test failed
        lab.close()


def placed(lab: PoolLab, names: set[str]) -> dict[str, str] | None:
    """worker -> host once the hosts' snapshots hold exactly these workers."""
    placement = lab.placement()
    return placement if set(placement) == names else None


def test_fleet_mines_through_haproxy_on_every_host(lab: PoolLab) -> None:
    fleet = lab.start_fleet()
    names = {m["username"] for m in lab.miners}

    def every_miner_accepted() -> bool:
        return {e["worker"] for e in fleet.poll() if e["kind"] == "accepted"} == names

    wait_until(every_miner_accepted, 60, "an accepted share from every miner")
    placement = wait_until(lambda: placed(lab, names), 20, "every miner in the hosts' snapshots")
    # HAProxy spread the fleet over the three hosts by least connections.
    spread = Counter(placement.values())
    assert set(spread) == set(lab.hosts) and min(spread.values()) >= 3, spread

    # One host's admin API shows the whole pool, and each miner's region is that of its real address
    # (HAProxy's PROXY v2 header), not the balancer's private one.
    overview = lab.api("h2", "/api/v1/overview")
    assert (overview["pool"]["connections"], overview["pool"]["workers"]) == (18, 18), overview["pool"]
    workers = {w["name"]: w for w in lab.api("h2", "/api/v1/workers?limit=100")["items"]}
    assert set(workers) == names
    for miner in lab.miners:
        row = workers[miner["username"]]
        assert row["country"] == miner["country"], (miner, row)
        if miner["subdivision"]:
            assert row["subdivision"] == miner["subdivision"], (miner, row)

    # A clean stop: every share a miner saw accepted is in the books once.
    report = fleet.stop()
    for host in lab.hosts:
        assert lab.stop_pool(host) == 0, lab.logs_tail()
    total, per_account = lab.ledger_counts()
    accepted = {m["account"]: report[m["username"]]["accepted"] for m in lab.miners}
    assert per_account == accepted
    assert total == sum(accepted.values())
