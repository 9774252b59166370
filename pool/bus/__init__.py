"""The inter-process bus: what connects the pool's worker processes (on one host or many) through Redis.

Every process runs one ClusterLink (`link.py`): it publishes this process's NodeSnapshot
(`local_snapshot` in `local.py`; the snapshot types are in pool.cluster.snapshot) and runs the control
operations (kick, reconnect, ban, port difficulty, reload) that the admin API in worker 0 broadcasts,
through LocalActions (`local.py`). The admin adapters (pool.admin_wiring) read the other processes'
snapshots and send control operations through it; nothing here knows the admin API's adapters.

    me = Identity(node=node, worker_index=0, started_at=time.time())
    link = ClusterLink(config, me, server, ledger, LocalActions(node, server, reload))
    await link.start()          # publisher + control listener; link.stop() on the way out
"""

from __future__ import annotations

from pool.bus.link import Broadcast, ClusterKeys, ClusterLink
from pool.bus.local import ControlOp, ControlReply, Identity, LocalActions, local_snapshot

__all__ = ["Broadcast", "ClusterKeys", "ClusterLink", "ControlOp", "ControlReply", "Identity", "LocalActions",
           "local_snapshot"]
