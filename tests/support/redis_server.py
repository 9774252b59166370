"""Moved to pool/sim/redis_server.py (the benchmarks use it too); kept so older imports still work."""

from pool.sim.redis_server import RedisProcess, free_port

__all__ = ["RedisProcess", "free_port"]
