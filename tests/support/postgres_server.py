"""Moved to pool/sim/postgres_server.py (the benchmarks use it too); kept so older imports still work."""

from pool.sim.postgres_server import PostgresProcess

__all__ = ["PostgresProcess"]
