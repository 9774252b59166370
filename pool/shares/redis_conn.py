"""Redis client from the config (single, Sentinel or Cluster) and the one way scripts are run."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.sentinel import Sentinel
from redis.exceptions import NoScriptError

from pool.config.ledger import RedisConfig

RedisClient = aioredis.Redis | RedisCluster


def _host_port(url: str, default_port: int) -> tuple[str, int]:
    parts = urlsplit(url if "//" in url else f"redis://{url}")
    return parts.hostname or "127.0.0.1", parts.port or default_port


def create_redis(config: RedisConfig) -> RedisClient:
    """A client for the configured deployment. Responses are bytes (decode where read)."""
    common: dict[str, Any] = {
        "socket_connect_timeout": config.connect_timeout_s,
        "socket_timeout": config.socket_timeout_s,
    }
    if config.password:
        common["password"] = config.password
    if config.mode == "cluster":
        nodes = [ClusterNode(*_host_port(u, 6379)) for u in [config.url, *config.urls]]
        return RedisCluster(startup_nodes=nodes, require_full_coverage=True, **common)
    if config.mode == "sentinel":
        sentinel = Sentinel([_host_port(u, 26379) for u in config.urls],
                            sentinel_kwargs={"socket_connect_timeout": config.connect_timeout_s,
                                             "socket_timeout": config.socket_timeout_s},
                            **common)
        return sentinel.master_for(config.sentinel_service)
    return aioredis.Redis.from_url(config.url, **common)


class Script:
    """A Lua script run by EVALSHA, falling back to EVAL when the server lost its script cache
    (a restarted Redis, a new cluster node)."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    async def __call__(self, client: RedisClient, keys: Sequence[str], args: Sequence[Any]) -> Any:
        try:
            return await client.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            return await client.eval(self.source, len(keys), *keys, *args)


async def run_scripts(client: RedisClient, calls: Sequence[tuple[Script, Sequence[str], Sequence[Any]]]) -> list[Any]:
    """Several script calls in one pipeline (one round trip on a single Redis; per node on a
    cluster), replies in order. A call the server had no script for is run again on its own (EVAL)."""
    if not calls:
        return []
    async with client.pipeline(transaction=False) as pipe:
        for script, keys, args in calls:
            pipe.evalsha(script.sha, len(keys), *keys, *args)
        replies = await pipe.execute(raise_on_error=False)
    out = []
    for (script, keys, args), reply in zip(calls, replies, strict=True):
        if isinstance(reply, NoScriptError):
            reply = await script(client, keys, args)
        elif isinstance(reply, Exception):
            raise reply
        out.append(reply)
    return out


def is_cluster(client: RedisClient) -> bool:
    return isinstance(client, RedisCluster)


def text(value: bytes | str | None) -> str:
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else value
