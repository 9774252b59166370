"""The Redis key layout of the books, and hash-slot helpers.

Every key carries a hash tag so related keys share a Redis Cluster slot:

- ``{P:sN}``  worker/account data of shard N (an account and all its workers live in one shard):
  time buckets ``{P:sN}:b:<res>:<start>`` (fields ``w:<worker>`` / ``a:<account>`` -> difficulty sum
  x 1000 as an integer), all-time per-account totals ``{P:sN}:acct:d`` / ``{P:sN}:acct:n``,
  last seen ``{P:sN}:seen:w`` / ``{P:sN}:seen:a``, first share ``{P:sN}:first:w`` / ``{P:sN}:first:a``
  and first authorize ``{P:sN}:auth:w`` / ``{P:sN}:auth:a`` (sorted sets by unix time); bucket fields
  ``wn:<worker>`` / ``an:<account>`` count the shares;
  per-minute rank sets ``{P:sN}:rk:w:d:<minute>`` / ``{P:sN}:rk:w:n:<minute>`` (and ``rk:a:``; difficulty
  and shares per name) and the rank windows summed from them ``{P:sN}:rk:w:win*`` (Keys.rank_base);
  share counts per worker ``{P:sN}:tally`` (``wa:<worker>`` accepted, ``wr:<worker>`` / ``ar:<account>``
  rejected, ``wt:<worker>`` its last firmware and region), since ``{P:sN}:tally:since`` (``w:<worker>`` /
  ``a:<account>``), and a worker's rejects by reason ``{P:sN}:rej:<worker>`` (see pool.shares.tallies).
- ``{P:pool}`` pool-wide: buckets ``{P:pool}:b:<res>:<start>`` (``d``, ``n``), totals ``{P:pool}:tot``,
  the pool's first start ``{P:pool}:first``,
  the current round ``{P:pool}:round:cur`` (``_d``, ``_n``, ``_opened``) and closed rounds
  ``{P:pool}:round:<blockhash>`` (renamed by the batch holding the block),
  the PPLNS slices ``{P:pool}:pplns:*``.
- ``{P:pay}``  blocks (one slot): ``{P:pay}:blk:<hash>``, ``{P:pay}:blocks`` (zset by found time),
  ``{P:pay}:open``, ``{P:pay}:pps_outbox``. Money is in PostgreSQL; the ledger older versions kept here
  (``{P:pay}:ledger`` stream, ``{P:pay}:bal``, ``{P:pay}:batch:<key>``, ``{P:pay}:batches``) is only
  read, by ``geostratum payouts migrate-from-redis``.
- ``{P:lease}`` extranonce1 prefix leases.

A batch's "applied" marker must live in the slot of the ops it guards; ``marker_key`` finds a short
tag that hashes to any given slot.
"""

from __future__ import annotations

import zlib
from functools import lru_cache

from redis.crc import key_slot as _key_slot

SLOTS = 16384


def key_slot(key: str) -> int:
    return _key_slot(key.encode())


@lru_cache(maxsize=SLOTS)
def tag_for_slot(slot: int) -> str:
    """A short string whose CRC16 lands on `slot` (searched once per slot, then cached)."""
    i = 0
    while True:
        candidate = f"m{i}"
        if _key_slot(candidate.encode()) == slot:
            return candidate
        i += 1


class Keys:
    """Builds every key name from the configured prefix."""

    def __init__(self, prefix: str, shards: int) -> None:
        self.prefix = prefix
        self.shards = shards
        self.pool = f"{{{prefix}:pool}}"
        self.pay = f"{{{prefix}:pay}}"
        self.lease = f"{{{prefix}:lease}}"
        self._shard_tags = [f"{{{prefix}:s{n}}}" for n in range(shards)]
        self._shard_cache: dict[str, str] = {}

    # -- shards -------------------------------------------------------------------------------
    def shard(self, account: str) -> str:
        tag = self._shard_cache.get(account)
        if tag is None:
            tag = self._shard_tags[zlib.crc32(account.encode()) % self.shards]
            if len(self._shard_cache) < 1_000_000:
                self._shard_cache[account] = tag
        return tag

    def all_shards(self) -> list[str]:
        return list(self._shard_tags)

    @staticmethod
    def bucket(tag: str, resolution: int, start: int) -> str:
        return f"{tag}:b:{resolution}:{start}"

    @staticmethod
    def bucket_prefix(tag: str) -> str:
        """What every bucket key of `tag` starts with (lua.WINDOW_SUMS builds the keys from it)."""
        return f"{tag}:b:"

    @staticmethod
    def totals(tag: str) -> str:
        return f"{tag}:tot"

    @staticmethod
    def account_difficulty(tag: str) -> str:
        """All-time accepted difficulty per account of the shard (float sums)."""
        return f"{tag}:acct:d"

    @staticmethod
    def account_shares(tag: str) -> str:
        """All-time accepted share count per account of the shard."""
        return f"{tag}:acct:n"

    @staticmethod
    def seen_workers(tag: str) -> str:
        return f"{tag}:seen:w"

    @staticmethod
    def seen_accounts(tag: str) -> str:
        return f"{tag}:seen:a"

    @staticmethod
    def tally(tag: str) -> str:
        return f"{tag}:tally"

    @staticmethod
    def tally_since(tag: str) -> str:
        return f"{tag}:tally:since"

    @staticmethod
    def worker_rejects(tag: str, worker: str) -> str:
        return f"{tag}:rej:{worker}"

    @staticmethod
    def rank_base(tag: str, kind: str) -> str:
        """Prefix of the rank sets of workers (kind "w") or accounts ("a"): per minute ``:d:<minute>``
        (difficulty in bucket units) and ``:n:<minute>`` (shares) per name, and the rank window
        ``:win`` (its sums ``:win:n``, ``:win:ok``, ``:win:warm``; see pool.shares.ranking)."""
        return f"{tag}:rk:{kind}"

    @classmethod
    def rank_window(cls, tag: str, kind: str) -> str:
        return f"{cls.rank_base(tag, kind)}:win"

    @staticmethod
    def first_seen(tag: str, kind: str = "") -> str:
        """Sorted set of first observations (unix time, kept by ZADD LT): ``{P:sN}:first:w`` (workers),
        ``{P:sN}:first:a`` (accounts); the pool's ``{P:pool}:first`` (member ``d``: its first start)."""
        return f"{tag}:first:{kind}" if kind else f"{tag}:first"

    @staticmethod
    def authorized(tag: str, kind: str) -> str:
        """Sorted set of the earliest authorize (unix time, kept by ZADD LT) of each worker (kind "w")
        and of any worker of each account ("a"): where the books start observing them."""
        return f"{tag}:auth:{kind}"

    # -- pool-wide ----------------------------------------------------------------------------
    @property
    def round_current(self) -> str:
        return f"{self.pool}:round:cur"

    def round_closed(self, block_hash: str) -> str:
        return f"{self.pool}:round:{block_hash}"

    @property
    def pplns_base(self) -> str:
        return f"{self.pool}:pplns"

    def pplns_slice(self, n: int) -> str:
        return f"{self.pool}:pplns:sl:{n}"

    @property
    def pplns_slice_totals(self) -> str:
        return f"{self.pool}:pplns:tot"

    @property
    def pplns_block_slices(self) -> str:
        """hash block hash -> the slice the block closed (until its window is snapshotted)."""
        return f"{self.pool}:pplns:blk"

    def pplns_window(self, block_hash: str) -> str:
        return f"{self.pool}:pplns:win:{block_hash}"

    # -- blocks and payouts -------------------------------------------------------------------
    def block(self, block_hash: str) -> str:
        return f"{self.pay}:blk:{block_hash}"

    @property
    def blocks(self) -> str:
        return f"{self.pay}:blocks"

    @property
    def refused_blocks(self) -> str:
        """Candidates no node took: a sorted set of RefusedBlock JSON by found_at (bounded)."""
        return f"{self.pay}:refused"

    @property
    def open_blocks(self) -> str:
        return f"{self.pay}:open"

    @property
    def ledger(self) -> str:
        return f"{self.pay}:ledger"

    @property
    def balances(self) -> str:
        return f"{self.pay}:bal"

    def payout_batch(self, key: str) -> str:
        return f"{self.pay}:batch:{key}"

    @property
    def payout_batches(self) -> str:
        return f"{self.pay}:batches"

    @property
    def pps_outbox(self) -> str:
        """stream: per-share (PPS/FPPS) credits of each batch, waiting to be moved to the PostgreSQL books."""
        return f"{self.pay}:pps_outbox"

    # -- leases and markers -------------------------------------------------------------------
    def lease_key(self, prefix_value: int) -> str:
        return f"{self.lease}:p:{prefix_value}"

    def marker_key(self, slot: int, batch_id: str) -> str:
        return f"{{{tag_for_slot(slot)}}}:{self.prefix}:m:{batch_id}"
