"""Geography: IP -> region (once per connection), region/firmware rollups, research exports.

Wiring (pool/app.py):
    locator = GeoLocator(config.geo)                      # tag_connection(ip) -> (country, sub, hosting)
    classify = FirmwareClassifier()                       # classify(user_agent) -> family
    rollup = GeoRollup(config.geo, lambda: locator.databases, prefix=config.redis.key_prefix,
                       fine_s=config.ledger.fine_bucket_s)   # the live windows' edges: the ledger's buckets
    ledger.register(rollup)                               # rollup.ops(records, batch_id) -> [RedisOp]
    recorder = NetworkDifficultyRecorder(redis, rollup)   # await recorder.record_network_difficulty(d)
    await export(redis, config.geo, layout, period, first, last, prefix=...) -> ExportResult
"""

from pool.geo.country_ips import draw_ips
from pool.geo.exports import LAYOUTS, ExportResult, export, export_many
from pool.geo.firmware import FirmwareClassifier, classify_firmware
from pool.geo.locator import DatabaseInfo, GeoLocator, GeoTag, default_city_db
from pool.geo.periods import PERIODS
from pool.geo.report import Report, build_report
from pool.geo.rollup import GeoRollup, NetworkDifficultyRecorder, apply_ops, miner_id
from pool.geo.tables import OTHER, PRIVATE, UNKNOWN, world_bank_name

__all__ = [
    "LAYOUTS", "OTHER", "PERIODS", "PRIVATE", "UNKNOWN", "DatabaseInfo", "ExportResult", "FirmwareClassifier",
    "GeoLocator", "GeoRollup", "GeoTag", "NetworkDifficultyRecorder", "Report", "apply_ops", "build_report",
    "classify_firmware", "default_city_db", "draw_ips", "export", "export_many", "miner_id",
    "world_bank_name",
]
