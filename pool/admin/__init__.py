"""Operator surface: the HTTP admin API, Prometheus /metrics and the live dashboard.

pool/app.py builds an AdminServer with adapters implementing the Protocols in
pool.admin.interfaces; nothing here imports the stratum, chain, shares or geo internals.
"""

from pool.admin.server import AdminServer

__all__ = ["AdminServer"]
