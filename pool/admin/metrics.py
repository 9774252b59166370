"""Prometheus text exposition (format 0.0.4), written here rather than with prometheus_client so
the numbers come straight from one MetricsSnapshot and nothing registers global state."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable

from pool.admin.interfaces import BooksFigures, HistogramSnapshot, MetricsSnapshot

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


def render(snap: MetricsSnapshot, *, admin_requests: dict[int, int], rate_limited: int) -> str:
    out = Exposition()
    out.family("geostratum_shares_total", "counter", "Shares by verdict and reject reason since start.")
    for share in snap.shares:
        out.sample("geostratum_shares_total", share.count, [("result", share.result), ("reason", share.reason)])
    out.family(
        "geostratum_share_difficulty_total", "counter", "Sum of credited share difficulty by verdict and reason."
    )
    for share in snap.shares:
        labels = [("result", share.result), ("reason", share.reason)]
        out.sample("geostratum_share_difficulty_total", share.difficulty, labels)

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
    for port in snap.ports:
        out.sample("geostratum_connections", port.connections, [("port", str(port.port))])
    out.gauge("geostratum_workers", "Distinct authorized workers connected.", snap.workers)

    out.histogram("geostratum_notify_fanout_seconds", "Time to write one mining.notify to every session.",
                  snap.notify_fanout_seconds)
    out.histogram("geostratum_block_to_notify_seconds", "Time from a new tip seen to the first clean notify.",
                  snap.block_to_notify_seconds)
    out.gauge("geostratum_template_age_seconds", "Age of the block template behind the current job.",
              snap.template_age_seconds)
    out.gauge("geostratum_ledger_flush_lag_seconds", "Age of the oldest accepted share not yet in Redis.",
              snap.ledger_flush_lag_seconds)
    out.gauge("geostratum_ledger_pending_shares", "Accepted shares waiting for the next ledger flush.",
              snap.ledger_pending_shares)
    out.gauge("geostratum_journal_bytes", "Size of the local journal of unflushed batches.", snap.journal_bytes)
    out.gauge("geostratum_journal_entries", "Batches in the local journal.", snap.journal_entries)
    out.gauge("geostratum_redis_up", "1 when Redis answers, else 0.", 1 if snap.redis_up else 0)
    if snap.redis_latency_seconds is not None:
        out.gauge("geostratum_redis_latency_seconds", "Round trip of the last Redis health check.",
                  snap.redis_latency_seconds)
    if snap.session_resumes:
        out.family("geostratum_session_resumes_total", "counter",
                   "mining.subscribe resumes through the shared directory, by outcome, since start.")
        for outcome, count in sorted(snap.session_resumes.items()):
            out.sample("geostratum_session_resumes_total", count, [("outcome", outcome)])
    out.family("geostratum_node_up", "gauge", "1 when the bitcoind node (or devnet) answers, else 0.")
    for node in snap.nodes:
        out.sample("geostratum_node_up", 1 if node.up else 0, [("node", safe_node_label(node.name))])
    out.family("geostratum_node_latency_seconds", "gauge", "Round trip of the last node health check.")
    for node in snap.nodes:
        if node.latency_seconds is not None:
            out.sample("geostratum_node_latency_seconds", node.latency_seconds,
                       [("node", safe_node_label(node.name))])
    out.family("geostratum_blocks_found_total", "counter", "Blocks found by the pool.")
    out.sample("geostratum_blocks_found_total", snap.blocks_found)
    out.gauge("geostratum_chain_height", "Tip height of the chain the pool mines on.", snap.chain_height)
    out.gauge("geostratum_network_difficulty", "Network difficulty at the tip.", snap.network_difficulty)
    if snap.best_share_difficulty is not None:
        out.gauge("geostratum_best_share_difficulty", "The pool's best share ever: the difficulty its hash reached.",
                  snap.best_share_difficulty)
    if snap.round_best_share_difficulty is not None:
        out.gauge("geostratum_round_best_share_difficulty",
                  "The best share since the pool's last block: the difficulty its hash reached "
                  "(0 before its first share).",
                  snap.round_best_share_difficulty)

    if snap.alerts:
        out.family("geostratum_alerts_total", "counter",
                   "Alert deliveries by target and outcome (sent, failed, retried, rate_limited, queue_full).")
        for name, outcomes in sorted(snap.alerts.items()):
            for outcome, count in sorted(outcomes.items()):
                out.sample("geostratum_alerts_total", count, [("target", name), ("outcome", outcome)])

    if snap.books is not None:
        _books(out, snap.books)

    if snap.geo_databases:
        out.family("geostratum_geo_database_age_seconds", "gauge",
                   "Age of each geolocation database in use (now minus its build time); IP blocks move "
                   "between countries, so refresh it (geostratum geo update).")
        for db in snap.geo_databases:
            out.sample("geostratum_geo_database_age_seconds", db.age_seconds, [("role", db.role), ("type", db.type)])
        out.family("geostratum_geo_database_stale", "gauge",
                   "1 when the database is older than geo.max_database_age_days, else 0.")
        for db in snap.geo_databases:
            out.sample("geostratum_geo_database_stale", 1 if db.age_seconds > db.max_age_seconds else 0,
                       [("role", db.role), ("type", db.type)])

    out.family("geostratum_admin_requests_total", "counter", "Admin API responses by HTTP status.")
    for status in sorted(admin_requests):
        out.sample("geostratum_admin_requests_total", admin_requests[status], [("code", str(status))])
    out.family("geostratum_admin_rate_limited_total", "counter", "Admin API requests refused by the rate limit.")
    out.sample("geostratum_admin_rate_limited_total", rate_limited)
    return out.text()


def _books(out: Exposition, books: BooksFigures) -> None:
    out.gauge("geostratum_books_up", "1 when the payout books' PostgreSQL answered this scrape, else 0.",
              1 if books.up else 0)
    if not books.up:
        return
    out.gauge("geostratum_books_unpaid_balance_sat", "Owed to miners: the sum of their balances, satoshis.",
              books.unpaid_sat)
    out.gauge("geostratum_books_unpaid_accounts", "Miner accounts with a balance above zero.", books.unpaid_accounts)
    out.gauge("geostratum_books_in_flight_sat", "In payout batches created or being sent, satoshis.",
              books.in_flight_sat)
    out.gauge("geostratum_books_paid_sat", "Paid by the wallet since the books began, satoshis.", books.paid_sat)
    out.gauge("geostratum_books_last_payout_timestamp_seconds", "When the last payout batch was sent (0: never).",
              books.last_payout_at)
    out.gauge("geostratum_books_last_payout_sat", "Total of the last payout batch sent, satoshis.",
              books.last_payout_sat)
    out.gauge("geostratum_books_consistent",
              "1 when every balance equals the sum of its journal entries and all balances add up to 0.",
              1 if books.inconsistent_accounts == 0 and books.total_msat == 0 else 0)
    out.gauge("geostratum_books_inconsistent_accounts", "Accounts whose balance differs from their journal entries.",
              books.inconsistent_accounts)
