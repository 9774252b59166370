"""A fixed, hand-checkable pool: five workers in four countries, a day of shares, three blocks.

alice.rig1  US-GA  difficulty 2^20 every 60 s for 24 h -> 2^52 / 60 H/s = 75.06 TH/s
alice.rig2  US-TX  difficulty 2^19 every 60 s for 24 h -> 37.53 TH/s
bob.s19     CA-QC  difficulty 2^20 every 60 s for 24 h -> 75.06 TH/s
carol.m30   DE-BY  difficulty 2^21 every 120 s for 24 h -> 75.06 TH/s
dave.avalon KZ     difficulty 2^18 every 60 s for the last hour -> 18.76 TH/s (two connections)
"""

from __future__ import annotations

from pool.admin.interfaces import BlockInfo, NetworkInfo
from pool.stratum.events import ShareRecord
from tests.admin.providers import InMemoryPool

HEIGHT = 880_000                         # 1024 blocks into the period that starts at 878,976
DIFFICULTY = 1.0e14
BLOCK_SECONDS_THIS_PERIOD = 540          # blocks came 10% fast
FEES_SAT = [2_000_000, 4_000_000]        # average 0.03 BTC

WORKERS = [
    # name, country, subdivision, difficulty, interval seconds, seconds of history, firmware
    ("alice.rig1", "US", "GA", 2.0**20, 60, 86_400, "bitmain"),
    ("alice.rig2", "US", "TX", 2.0**19, 60, 86_400, "bitmain"),
    ("bob.s19", "CA", "QC", 2.0**20, 60, 86_400, "bitmain"),
    ("carol.m30", "DE", "BY", 2.0**21, 120, 86_400, "microbt"),
    ("dave.avalon", "KZ", "", 2.0**18, 60, 3_600, "canaan"),
]


def populate(pool: InMemoryPool) -> InMemoryPool:
    now = pool.clock()
    for name, country, subdivision, difficulty, interval, span, firmware in WORKERS:
        pool.connect(name, country=country, subdivision=subdivision, difficulty=difficulty)
        for k in range(span // interval):
            pool.add_share(ShareRecord(
                timestamp=now - k * interval, account=name.split(".")[0], worker=name, difficulty=difficulty,
                share_difficulty=difficulty * 1.5, height=HEIGHT + 1, country=country, subdivision=subdivision,
                firmware=firmware, node="node-a"))
    pool.connect("dave.avalon", country="KZ", difficulty=2.0**18, address="198.51.100.9")
    for k in range(5):
        pool.reject("alice.rig1", "stale", 2.0**20, now - 100 - k)
    for k in range(2):
        pool.reject("bob.s19", "duplicate", 2.0**20, now - 200 - k)
    pool.reject("carol.m30", "low-difficulty", 2.0**21, now - 300)
    pool.reject("carol.m30", "stale", 2.0**21, now - 7200)   # outside the 1 h share window
    tip_time = int(now) - 300
    pool.network_info = NetworkInfo(
        chain="main", height=HEIGHT, difficulty=DIFFICULTY, tip_time=tip_time,
        period_start_time=tip_time - 1024 * BLOCK_SECONDS_THIS_PERIOD,
        recent_block_times=[tip_time - 600 * k for k in range(10, -1, -1)],
        recent_block_difficulties=[DIFFICULTY] * 11,
        recent_fees_sat=FEES_SAT,
    )
    pool.blocks_found = [
        BlockInfo(height=879_990, hash="00" * 31 + "aa", found_at=now - 6000, worker="alice.rig1", account="alice",
                  status="confirmed", reward_sat=315_000_000, fees_sat=2_500_000, confirmations=11,
                  network_difficulty=DIFFICULTY, effort=0.8),
        BlockInfo(height=879_500, hash="00" * 31 + "bb", found_at=now - 300_000, worker="bob.s19", account="bob",
                  status="confirmed", reward_sat=314_000_000, confirmations=501, network_difficulty=DIFFICULTY),
        BlockInfo(height=879_100, hash="00" * 31 + "cc", found_at=now - 540_000, worker="carol.m30",
                  account="carol", status="orphaned", reward_sat=313_000_000, network_difficulty=DIFFICULTY),
        BlockInfo(height=870_000, hash="00" * 31 + "dd", found_at=now - 6_000_000, worker="bob.s19",
                  account="bob", status="confirmed", reward_sat=320_000_000, network_difficulty=DIFFICULTY),
    ]
    for seconds in (0.0004, 0.0009, 0.003, 0.02):
        pool.fanout.observe(seconds)
    pool.block_to_notify.observe(0.15)
    return pool
