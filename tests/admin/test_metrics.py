"""/metrics parses as Prometheus text (checked with prometheus_client's parser) and carries the
figures of the sample pool."""

from __future__ import annotations

import msgspec
import pytest
from prometheus_client.parser import text_string_to_metric_families

from pool.admin.interfaces import CountryRate, PortRate
from pool.admin.metrics import CONTENT_TYPE, render
from pool.chain.rpc import NodeHealth
from pool.cluster.snapshot import NodeSnapshot
from pool.shares.hashrate import empty_figure
from pool.stratum.extranonce import ExtranonceSnapshot
from pool.stratum.resume_link import ResumeSnapshot
from pool.stratum.stats import LatencyHistogram
from tests.admin.conftest import READ, Running
from tests.support import snapshots


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


async def test_metrics_endpoint(admin: Running) -> None:
    async with admin.request("GET", "/metrics", headers=READ) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == CONTENT_TYPE
        text = await response.text()
    families = {f.name: f.type for f in text_string_to_metric_families(text)}
    for name, kind in {
        "geostratum_shares": "counter", "geostratum_pool_hashrate_hps": "gauge",
        "geostratum_port_hashrate_hps": "gauge", "geostratum_country_hashrate_hps": "gauge",
        "geostratum_connections": "gauge", "geostratum_notify_fanout_seconds": "histogram",
        "geostratum_block_to_notify_seconds": "histogram", "geostratum_template_age_seconds": "gauge",
        "geostratum_ledger_flush_lag_seconds": "gauge", "geostratum_journal_bytes": "gauge",
        "geostratum_redis_up": "gauge", "geostratum_node_up": "gauge",
    }.items():
        assert families.get(name) == kind, name
    values = samples(text)
    assert values[("geostratum_shares_total", (("reason", ""), ("result", "accepted")))] == 5100
    assert values[("geostratum_shares_total", (("reason", "stale"), ("result", "rejected")))] == 6
    assert values[("geostratum_connections", (("port", "3333"),))] == 6
    # Five fan-outs observed: 0.4 ms, 0.9 ms, 3 ms, 20 ms -> cumulative buckets.
    assert values[("geostratum_notify_fanout_seconds_bucket", (("le", "0.0005"),))] == 1
    assert values[("geostratum_notify_fanout_seconds_bucket", (("le", "0.001"),))] == 2
    assert values[("geostratum_notify_fanout_seconds_bucket", (("le", "0.005"),))] == 3
    assert values[("geostratum_notify_fanout_seconds_bucket", (("le", "+Inf"),))] == 4
    assert values[("geostratum_notify_fanout_seconds_count", ())] == 4
    assert values[("geostratum_notify_fanout_seconds_sum", ())] == pytest.approx(0.0243)
    assert values[("geostratum_redis_up", ())] == 1
    # The node label lost the credentials its URL carried.
    assert values[("geostratum_node_up", (("node", "http://127.0.0.1:8332"),))] == 1
    assert "hunter2" not in text and "rpcuser" not in text
    pool_rate = values[("geostratum_pool_hashrate_hps", ())]
    countries = sum(v for (name, _), v in values.items() if name == "geostratum_country_hashrate_hps")
    assert countries == pytest.approx(pool_rate)
    # The figure's uncertainty and window come with it.
    low, high = values[("geostratum_pool_hashrate_low_hps", ())], values[("geostratum_pool_hashrate_high_hps", ())]
    assert low < pool_rate < high
    assert values[("geostratum_pool_hashrate_observed_seconds", ())] == 300
    assert values[("geostratum_pool_hashrate_shares", ())] > 0


def test_label_escaping_and_special_values() -> None:
    hist = LatencyHistogram([0.1, 1.0])
    hist.observe(5.0)
    snap = snapshots.metrics(
        snapshots.process(stratum={"fanout": hist.snapshot()}),
        pool_hashrate=msgspec.structs.replace(empty_figure(300), hashrate=float("nan")),
        chain={"template_age": float("inf"), "nodes": [NodeHealth(name='we"ird\\node\nname', url="", healthy=False)]})
    text = render(snap, admin_requests={200: 3}, rate_limited=0)
    values = samples(text)
    assert values[("geostratum_node_up", (("node", 'we"ird\\node\nname'),))] == 0
    assert values[("geostratum_notify_fanout_seconds_bucket", (("le", "+Inf"),))] == 1
    assert values[("geostratum_notify_fanout_seconds_bucket", (("le", "1.0"),))] == 0
    assert values[("geostratum_template_age_seconds", ())] == float("inf")
    assert values[("geostratum_admin_requests_total", (("code", "200"),))] == 3
    assert "geostratum_redis_latency_seconds" not in text   # unknown, so absent rather than 0


def test_session_resumes_by_outcome_summed_over_processes() -> None:
    def resumes(claimed: int, missed: int, failed: int) -> dict[str, ResumeSnapshot]:
        return {"resume": snapshots.zeroed(ResumeSnapshot, claimed=claimed, missed=missed, failed=failed)}

    snap = snapshots.metrics(snapshots.process("a", stratum=resumes(5, 2, 0)),
                             snapshots.process("b", stratum=resumes(2, 0, 1)), snapshots.process("c"))
    text = render(snap, admin_requests={}, rate_limited=0)
    families = {f.name: f.type for f in text_string_to_metric_families(text)}
    assert families["geostratum_session_resumes"] == "counter"
    values = samples(text)
    assert values[("geostratum_session_resumes_total", (("outcome", "claimed"),))] == 7
    assert values[("geostratum_session_resumes_total", (("outcome", "missed"),))] == 2
    assert values[("geostratum_session_resumes_total", (("outcome", "failed"),))] == 1
    # Without a shared resume directory anywhere there is no such family.
    assert "geostratum_session_resumes" not in render(snapshots.metrics(), admin_requests={}, rate_limited=0)


def test_processes_are_summed_per_port() -> None:
    one = snapshots.process("a", stratum={"ports": [snapshots.port(3333, connections=2, accepted=10,
                                                                   accepted_difficulty=80.0,
                                                                   rejected={"stale": 1, "bad_nonce": 2})]},
                            ledger={"lag_s": 0.5, "pending_shares": 2, "queued_shares": 3, "journal_bytes": 100})
    two = snapshots.process("b", stratum={"ports": [snapshots.port(3333, connections=1, accepted=5,
                                                                   accepted_difficulty=40.0,
                                                                   rejected={"malformed": 4}),
                                                    snapshots.port(3334, connections=4)]},
                            ledger={"lag_s": 2.0, "pending_shares": 1, "journal_bytes": 50})
    values = samples(render(snapshots.metrics(one, two), admin_requests={}, rate_limited=0))
    assert values[("geostratum_connections", (("port", "3333"),))] == 3
    assert values[("geostratum_connections", (("port", "3334"),))] == 4
    assert values[("geostratum_shares_total", (("reason", ""), ("result", "accepted")))] == 15
    assert values[("geostratum_share_difficulty_total", (("reason", ""), ("result", "accepted")))] == 120.0
    assert values[("geostratum_shares_total", (("reason", "invalid"), ("result", "rejected")))] == 6
    assert values[("geostratum_shares_total", (("reason", "stale"), ("result", "rejected")))] == 1
    assert values[("geostratum_ledger_flush_lag_seconds", ())] == 2.0          # the furthest behind
    assert values[("geostratum_ledger_pending_shares", ())] == 6
    assert values[("geostratum_journal_bytes", ())] == 150
    assert values[("geostratum_extranonce_free", ())] == 0       # neither has filled in any extranonce1 yet


def test_extranonce_free_is_the_fullest_processs() -> None:
    def with_free(node: str, free: int) -> NodeSnapshot:
        return snapshots.process(node, stratum={"extranonce": snapshots.zeroed(ExtranonceSnapshot, free=free)})

    text = render(snapshots.metrics(with_free("a", 900), with_free("b", 12), with_free("c", 4000)),
                  admin_requests={}, rate_limited=0)
    assert samples(text)[("geostratum_extranonce_free", ())] == 12


def test_histogram_bounds_must_ascend() -> None:
    with pytest.raises(ValueError, match="ascending"):
        LatencyHistogram([1.0, 0.5])


def test_country_bounds_and_windows_are_stated() -> None:
    snap = snapshots.metrics(
        ports=[PortRate(port=3333, hashrate=5.0)],
        countries=[CountryRate(country="US", hashrate=100.0, low=80.0, high=125.0),
                   CountryRate(country="DE", hashrate=0.0, low=0.0, high=None)])
    text = render(snap, admin_requests={}, rate_limited=0)
    values = samples(text)
    assert values[("geostratum_country_hashrate_low_hps", (("country", "US"),))] == 80.0
    assert values[("geostratum_country_hashrate_high_hps", (("country", "US"),))] == 125.0
    assert ("geostratum_country_hashrate_high_hps", (("country", "DE"),)) not in values   # no share: no bound
    helps = {f.name: f.documentation for f in text_string_to_metric_families(text)}
    for name in ("geostratum_country_hashrate_hps", "geostratum_country_hashrate_low_hps",
                 "geostratum_country_hashrate_high_hps", "geostratum_port_hashrate_hps"):
        assert "5 minutes" in helps[name], name
