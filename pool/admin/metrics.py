"""Prometheus text exposition (format 0.0.4), written here rather than with prometheus_client so
the numbers come straight from one MetricsSnapshot and nothing registers global state."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any

from pool.admin.interfaces import MetricsSnapshot, reject_name
from pool.money.books import BooksSnapshot
from pool.stratum.stats import HistogramSnapshot, StratumSnapshot, merge_histograms

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_USERINFO = re.compile(r"//[^/@]*@")


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def _labels(pairs: Iterable[tuple[str, str]]) -> str:
    body = ",".join(f'{key}="{_escape(value)}"' for key, value in pairs)
    return "{" + body + "}" if body else ""


class Exposition:
    """Accumulates families; each family's HELP/TYPE lines are written once, before its samples."""

    def __init__(self) -> None:
        self._lines: list[str] = []

    def family(self, name: str, kind: str, help_text: str) -> None:
        self._lines.append(f"# HELP {name} {help_text}")
        self._lines.append(f"# TYPE {name} {kind}")

    def sample(self, name: str, value: float, labels: Iterable[tuple[str, str]] = ()) -> None:
        self._lines.append(f"{name}{_labels(labels)} {_number(value)}")

    def gauge(self, name: str, help_text: str, value: float) -> None:
        self.family(name, "gauge", help_text)
        self.sample(name, value)

    def histogram(self, name: str, help_text: str, hist: HistogramSnapshot) -> None:
        self.family(name, "histogram", help_text)
        running = 0
        for bound, count in zip(hist.bounds, hist.counts, strict=False):
            running += count
            self.sample(f"{name}_bucket", running, [("le", repr(float(bound)))])  # "1.0", as Go writes it
        self.sample(f"{name}_bucket", hist.count, [("le", "+Inf")])
        self.sample(f"{name}_sum", hist.sum)
        self.sample(f"{name}_count", hist.count)

    def text(self) -> str:
        return "\n".join(self._lines) + "\n"


def safe_node_label(name: str) -> str:
    """Strip any user:password@ a node URL might carry."""
    return _USERINFO.sub("//", name)


# Every field of the snapshots MetricsSnapshot holds is rendered below, or named here with the reason
# it is not (tests/admin/test_metrics_coverage.py checks both ways). "Type.field", or "Type" for all of it.
NOT_RENDERED = {
    "NodeSnapshot.node": "a process name: /metrics sums the processes",
    "NodeSnapshot.worker_index": "a process name: /metrics sums the processes",
    "NodeSnapshot.at": "when the process published: the admin API's health shows the snapshot's age",
    "NodeSnapshot.started_at": "the admin API's overview (started_at)",
    "ConnRow": "per-connection detail (the admin API's workers); /metrics counts distinct workers",
    "BanRow": "per-ban detail (the admin API's bans)",
    "StratumSnapshot.connections": "geostratum_connections is per port (PortSnapshot.connections)",
    "StratumSnapshot.sessions": "geostratum_connections is per port (PortSnapshot.connections)",
    "StratumSnapshot.share_write_failures": "the same shares as geostratum_shares_total{reason=\"not-recorded\"}",
    "StratumSnapshot.bans": "the admin API's bans",
    "PortSnapshot.name": "ports are labelled by number",
    "PortSnapshot.subscribed": "the admin API's ports",
    "PortSnapshot.workers": "geostratum_workers counts distinct workers over every port",
    "PortSnapshot.farm_proxies": "the admin API's ports",
    "PortSnapshot.start_difficulty": "a setting (the admin API's port difficulties)",
    "PortSnapshot.min_difficulty": "a setting (the admin API's port difficulties)",
    "PortSnapshot.max_difficulty": "a setting (the admin API's port difficulties)",
    "PortSnapshot.blocks": "geostratum_blocks_found_total counts the pool's blocks from the ledger",
    "ExtranonceSnapshot.prefix": "an identifier, not a figure",
    "ExtranonceSnapshot.prefix_bits": "a setting",
    "ExtranonceSnapshot.live": "geostratum_connections",
    "ExtranonceSnapshot.parked": "parked sessions show as geostratum_session_resumes_total when they resume",
    "ResumeSnapshot.published": "directory upkeep (logged when it fails)",
    "ResumeSnapshot.publish_failed": "directory upkeep (logged when it fails)",
    "ResumeSnapshot.syncs": "directory upkeep (logged when it fails)",
    "ResumeSnapshot.sync_failed": "directory upkeep (logged when it fails)",
    "ResumeSnapshot.taken_over": "directory upkeep (logged when it fails)",
    "ResumeSnapshot.announce_failed": "directory upkeep (logged when it fails)",
    "ResumeSnapshot.heartbeat_failed": "directory upkeep (logged when it fails)",
    "ResumeSnapshot.borrowed": "directory upkeep (logged when it fails)",
    "ResumeSnapshot.reserved": "directory upkeep (logged when it fails)",
    "LedgerSnapshot.node": "a process name: /metrics sums the processes",
    "LedgerSnapshot.last_flush_at": "geostratum_ledger_flush_lag_seconds says how far behind the ledger is",
    "LedgerSnapshot.last_attempt_at": "geostratum_ledger_flush_lag_seconds says how far behind the ledger is",
    "LedgerSnapshot.shares_added": "geostratum_shares_total counts the accepted shares",
    "LedgerSnapshot.shares_flushed": "geostratum_ledger_pending_shares is what is not flushed yet",
    "LedgerSnapshot.batches_flushed": "geostratum_journal_entries is what is not flushed yet",
    "LedgerSnapshot.groups_replayed": "the admin API's health and the logs",
    "LedgerSnapshot.groups_restored": "the admin API's health and the logs",
    "LedgerSnapshot.op_errors": "the admin API's health and the logs",
    "LedgerSnapshot.contributor_errors": "the admin API's health and the logs",
    "LedgerSnapshot.round_trips": "a benchmark figure",
    "LedgerSnapshot.last_error": "text: the admin API's health",
    "ChainSnapshot.backend": "a setting",
    "ChainSnapshot.network": "a setting",
    "ChainSnapshot.mode": "a setting",
    "ChainSnapshot.ready": "geostratum_template_age_seconds and the admin API's health",
    "ChainSnapshot.prevhash": "an identifier, not a figure",
    "ChainSnapshot.network_target": "geostratum_network_difficulty is the same number",
    "ChainSnapshot.template_id": "an identifier, not a figure",
    "ChainSnapshot.template_tx_count": "the admin API's network view",
    "ChainSnapshot.template_fees": "the admin API's network view",
    "ChainSnapshot.coinbase_value": "the admin API's network view",
    "ChainSnapshot.last_new_block_at": "geostratum_block_to_notify_seconds times what follows a new block",
    "ChainSnapshot.new_block_to_job_ms": "geostratum_block_to_notify_seconds covers it (new tip to first notify)",
    "ChainSnapshot.new_block_source": "text",
    "ChainSnapshot.jobs_live": "an internal cache size",
    "ChainSnapshot.solo_jobs_cached": "an internal cache size",
    "ChainSnapshot.blocks_submitted": "geostratum_blocks_found_total counts the pool's blocks from the ledger",
    "ChainSnapshot.blocks_accepted": "geostratum_blocks_found_total counts the pool's blocks from the ledger",
    "ChainSnapshot.last_block": "the admin API's blocks",
    "ChainSnapshot.zmq_messages": "the admin API's health",
    "ChainSnapshot.zmq_missed": "the admin API's health",
    "NodeHealth.url": "may carry credentials: nodes are labelled by name",
    "NodeHealth.calls": "geostratum_node_up says whether it answers",
    "NodeHealth.failures": "geostratum_node_up says whether it answers",
    "NodeHealth.consecutive_failures": "geostratum_node_up says whether it answers",
    "NodeHealth.last_ok_at": "geostratum_node_up says whether it answers",
    "NodeHealth.last_error": "text: the admin API's health",
    "NodeHealth.last_error_at": "the admin API's health",
    "DatabaseInfo.description": "text",
    "DatabaseInfo.build_date": "geostratum_geo_database_age_seconds is counted from build_epoch",
    "DatabaseInfo.attribution": "text (shown with the data)",
    "TargetStats.kind": "targets are labelled by name",
    "TargetStats.queued": "a queue depth at one instant; queue_full counts what it dropped",
    "TargetStats.last_error": "text: the logs",
    "BooksSnapshot.taken_at": "read for this scrape",
    "BooksSnapshot.pool_msat": "the pool's own fee account (the admin API)",
    "BooksSnapshot.rewards_msat": "the admin API's books",
    "BooksSnapshot.journal_transactions": "the admin API's health",
    "HashrateFigure.difficulty": "the pool hashrate is rendered from it",
    "HashrateFigure.window_seconds": "the metric's name and help say the window (5 minutes)",
    "HashrateFigure.warming_up": "geostratum_pool_hashrate_shares says how many shares the figure rests on",
    "HashrateFigure.first_share_excluded": "the pool's figure never excludes a first share",
}


def render(snap: MetricsSnapshot, *, admin_requests: dict[int, int], rate_limited: int) -> str:
    out = Exposition()
    stratum = [p.stratum for p in snap.processes]
    ledgers = [p.ledger for p in snap.processes]
    _shares(out, stratum)

    pool = snap.pool_hashrate
    out.gauge("geostratum_pool_hashrate_hps", "Pool hashrate over the last 5 minutes (the seconds observed), H/s.",
              pool.hashrate)
    out.gauge("geostratum_pool_hashrate_low_hps", "Lower 95 % bound of the pool hashrate (Poisson, share count).",
              pool.low)
    if pool.high is not None:
        out.gauge("geostratum_pool_hashrate_high_hps", "Upper 95 % bound of the pool hashrate (Poisson, share count).",
                  pool.high)
    out.gauge("geostratum_pool_hashrate_shares", "Accepted shares behind the pool hashrate figure.", pool.shares)
    out.gauge("geostratum_pool_hashrate_observed_seconds", "Seconds of the 5 minute window the pool was observed.",
              pool.covered_seconds)
    out.family("geostratum_port_hashrate_hps", "gauge",
               "Pool hashrate of the last 5 minutes (geostratum_pool_hashrate_hps) split by each port's share of "
               "the accepted difficulty counted in memory since the admin process started (at most 5 minutes), H/s; "
               "the ports sum to the pool figure.")
    for port in snap.ports:
        out.sample("geostratum_port_hashrate_hps", port.hashrate, [("port", str(port.port))])
    out.family("geostratum_country_hashrate_hps", "gauge",
               "Hashrate per country (ISO code) over the last 5 minutes, divided by the seconds the pool was "
               "observed (geostratum_pool_hashrate_observed_seconds): the countries sum to the pool figure, H/s.")
    for country in snap.countries:
        out.sample("geostratum_country_hashrate_hps", country.hashrate, [("country", country.country)])
    out.family("geostratum_country_hashrate_low_hps", "gauge",
               "Lower 95 % bound of the country hashrate of the last 5 minutes (Poisson, share count), H/s.")
    for country in snap.countries:
        out.sample("geostratum_country_hashrate_low_hps", country.low, [("country", country.country)])
    out.family("geostratum_country_hashrate_high_hps", "gauge",
               "Upper 95 % bound of the country hashrate of the last 5 minutes (Poisson, share count), H/s.")
    for country in snap.countries:
        if country.high is not None:
            out.sample("geostratum_country_hashrate_high_hps", country.high, [("country", country.country)])
    out.family("geostratum_connections", "gauge", "Open stratum connections per port.")
    for port, count in sorted(_summed((p.port, p.connections) for s in stratum for p in s.ports).items()):
        out.sample("geostratum_connections", count, [("port", str(port))])
    out.gauge("geostratum_workers", "Distinct authorized workers connected.",
              len({row.worker for p in snap.processes for row in p.rows}))
    out.gauge("geostratum_extranonce_free", "Extranonce1 values left on the fullest process; at 0 it refuses miners.",
              min((s.extranonce.free for s in stratum), default=0))

    if stratum:
        out.histogram("geostratum_notify_fanout_seconds", "Time to write one mining.notify to every session.",
                      merge_histograms([s.fanout for s in stratum]))
        out.histogram("geostratum_block_to_notify_seconds", "Time from a new tip seen to the first clean notify.",
                      merge_histograms([s.block_to_notify for s in stratum]))
    chain = snap.chain
    out.gauge("geostratum_template_age_seconds", "Age of the block template behind the current job.",
              chain.template_age)
    out.gauge("geostratum_ledger_flush_lag_seconds", "Age of the oldest accepted share not yet in Redis.",
              max((ledger.lag_s for ledger in ledgers), default=0.0))
    out.gauge("geostratum_ledger_pending_shares", "Accepted shares waiting for the next ledger flush.",
              sum(ledger.pending_shares + ledger.queued_shares for ledger in ledgers))
    out.gauge("geostratum_journal_bytes", "Size of the local journal of unflushed batches.",
              sum(ledger.journal_bytes for ledger in ledgers))
    out.gauge("geostratum_journal_entries", "Batches in the local journal.",
              sum(ledger.queued_batches for ledger in ledgers))
    redis_up = snap.redis_latency_seconds is not None and bool(ledgers) and ledgers[0].redis_up
    out.gauge("geostratum_redis_up", "1 when Redis answers, else 0.", 1 if redis_up else 0)
    if snap.redis_latency_seconds is not None:
        out.gauge("geostratum_redis_latency_seconds", "Round trip of the last Redis health check.",
                  snap.redis_latency_seconds)
    resumes = [s.resume for s in stratum if s.resume is not None]
    if resumes:
        out.family("geostratum_session_resumes_total", "counter",
                   "mining.subscribe resumes through the shared directory, by outcome, since start.")
        for outcome in ("claimed", "failed", "missed"):
            out.sample("geostratum_session_resumes_total", sum(getattr(r, outcome) for r in resumes),
                       [("outcome", outcome)])
    out.family("geostratum_node_up", "gauge", "1 when the bitcoind node (or devnet) answers, else 0.")
    for node in chain.nodes:
        out.sample("geostratum_node_up", 1 if node.healthy else 0, [("node", safe_node_label(node.name))])
    out.family("geostratum_node_latency_seconds", "gauge", "Round trip of the last node health check.")
    for node in chain.nodes:
        if node.healthy:
            out.sample("geostratum_node_latency_seconds", node.latency_ms / 1000,
                       [("node", safe_node_label(node.name))])
    out.family("geostratum_blocks_found_total", "counter", "Blocks found by the pool.")
    out.sample("geostratum_blocks_found_total", snap.blocks_found)
    out.gauge("geostratum_chain_height", "Tip height of the chain the pool mines on.", max(0, chain.height - 1))
    out.gauge("geostratum_network_difficulty", "Network difficulty at the tip.", chain.network_difficulty)
    if snap.best_share_difficulty is not None:
        out.gauge("geostratum_best_share_difficulty", "The pool's best share ever: the difficulty its hash reached.",
                  snap.best_share_difficulty)
    if snap.round_best_share_difficulty is not None:
        out.gauge("geostratum_round_best_share_difficulty",
                  "The best share since the pool's last block: the difficulty its hash reached "
                  "(0 before its first share).",
                  snap.round_best_share_difficulty)

    if snap.alert_targets:
        out.family("geostratum_alerts_total", "counter",
                   "Alert deliveries by target and outcome (sent, failed, retried, rate_limited, queue_full).")
        for target in sorted(snap.alert_targets, key=lambda t: t.name):
            for outcome, count in sorted({"sent": target.sent, "failed": target.failed, "retried": target.retries,
                                          "rate_limited": target.rate_limited,
                                          "queue_full": target.queue_full}.items()):
                out.sample("geostratum_alerts_total", count, [("target", target.name), ("outcome", outcome)])

    if snap.books_configured:
        _books(out, snap.books)

    if snap.ranking is not None:
        for name, help_text, value in (
                ("passes", "Passes of the rank keeper over every shard (the next minute's rank windows built "
                           "ahead of the readers).", snap.ranking.passes),
                ("built", "Rank window slots the keeper built or moved.", snap.ranking.built),
                ("failures", "Rank keeper passes cut short by a Redis error.", snap.ranking.failures)):
            out.family(f"geostratum_rank_keeper_{name}_total", "counter", help_text)
            out.sample(f"geostratum_rank_keeper_{name}_total", value)
        out.gauge("geostratum_rank_keeper_last_pass_seconds", "How long the rank keeper's last pass took.",
                  snap.ranking.last_pass_seconds)
        out.gauge("geostratum_rank_keeper_last_pass_age_seconds",
                  "Seconds since the rank keeper's last pass ended (at most about 60 while it keeps up; "
                  "-1 before its first).",
                  snap.at - snap.ranking.last_pass_at if snap.ranking.last_pass_at else -1)

    if snap.geo is not None and snap.geo.databases:
        limit = snap.geo.max_database_age_days * 86400.0
        out.family("geostratum_geo_database_age_seconds", "gauge",
                   "Age of each geolocation database in use (now minus its build time); IP blocks move "
                   "between countries, so refresh it (geostratum geo update).")
        for db in snap.geo.databases:
            out.sample("geostratum_geo_database_age_seconds", snap.at - db.build_epoch,
                       [("role", db.role), ("type", db.type)])
        out.family("geostratum_geo_database_stale", "gauge",
                   "1 when the database is older than geo.max_database_age_days, else 0.")
        for db in snap.geo.databases:
            out.sample("geostratum_geo_database_stale", 1 if snap.at - db.build_epoch > limit else 0,
                       [("role", db.role), ("type", db.type)])

    out.family("geostratum_admin_requests_total", "counter", "Admin API responses by HTTP status.")
    for status in sorted(admin_requests):
        out.sample("geostratum_admin_requests_total", admin_requests[status], [("code", str(status))])
    out.family("geostratum_admin_rate_limited_total", "counter", "Admin API requests refused by the rate limit.")
    out.sample("geostratum_admin_rate_limited_total", rate_limited)
    return out.text()


def _summed(pairs: Iterable[tuple[Any, float]]) -> dict[Any, float]:
    out: dict[Any, float] = {}
    for key, value in pairs:
        out[key] = out.get(key, 0) + value
    return out


def _shares(out: Exposition, stratum: list[StratumSnapshot]) -> None:
    """Verdicts of every process's shares since its start; rejected shares credit nothing (their
    difficulty sum is 0 by definition)."""
    rejected = _summed((reject_name(key), count) for s in stratum for key, count in s.rejected().items())
    rows = [("accepted", "", sum(s.accepted for s in stratum), sum(s.accepted_difficulty for s in stratum))]
    rows += [("rejected", name, count, 0.0) for name, count in sorted(rejected.items())]
    out.family("geostratum_shares_total", "counter", "Shares by verdict and reject reason since start.")
    for result, reason, count, _ in rows:
        out.sample("geostratum_shares_total", count, [("result", result), ("reason", reason)])
    out.family(
        "geostratum_share_difficulty_total", "counter", "Sum of credited share difficulty by verdict and reason."
    )
    for result, reason, _, difficulty in rows:
        out.sample("geostratum_share_difficulty_total", difficulty, [("result", result), ("reason", reason)])


def _books(out: Exposition, books: BooksSnapshot | None) -> None:
    out.gauge("geostratum_books_up", "1 when the payout books' PostgreSQL answered this scrape, else 0.",
              1 if books is not None else 0)
    if books is None:
        return
    out.gauge("geostratum_books_unpaid_balance_sat", "Owed to miners: the sum of their balances, satoshis.",
              books.unpaid_msat / 1000)
    out.gauge("geostratum_books_unpaid_accounts", "Miner accounts with a balance above zero.",
              books.accounts_with_balance)
    out.gauge("geostratum_books_in_flight_sat", "In payout batches created or being sent, satoshis.",
              books.in_flight_msat / 1000)
    out.gauge("geostratum_books_paid_sat", "Paid by the wallet since the books began, satoshis.",
              books.paid_msat / 1000)
    out.gauge("geostratum_books_last_payout_timestamp_seconds", "When the last payout batch was sent (0: never).",
              books.last_payout_at)
    out.gauge("geostratum_books_last_payout_sat", "Total of the last payout batch sent, satoshis.",
              books.last_payout_sat)
    out.gauge("geostratum_books_consistent",
              "1 when every balance equals the sum of its journal entries and all balances add up to 0.",
              1 if books.consistent else 0)
    out.gauge("geostratum_books_inconsistent_accounts", "Accounts whose balance differs from their journal entries.",
              books.inconsistent_accounts)
