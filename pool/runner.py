"""`geostratum run`: one pool process, or N worker processes sharing the stratum port.

With N workers on the devnet, the parent serves the one devnet chain over JSON-RPC and every worker
talks to it like to bitcoind, so all workers mine the same chain through the same code.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import resource
import signal
import sys
import time
from typing import Any

import msgspec
import uvloop

from pool import config as config_module
from pool.config import Config
from pool.config.options import config_option

log = logging.getLogger("geostratum")

WORKER_INDEX_ENV = "GEOSTRATUM_WORKER_INDEX"


async def _serve_one(config: Config, worker_index: int, config_path: str | None) -> None:
    from pool.app import PoolApp

    app = PoolApp(config, worker_index=worker_index, config_path=config_path)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    reloads: set[asyncio.Task[Any]] = set()

    async def reload() -> None:  # SIGHUP: the admin API's reload, for this process (it logs the result)
        try:
            await app.reload_config()
        except Exception as exc:
            log.error("SIGHUP: config not reloaded: %s", exc)

    def on_sighup() -> None:
        task = asyncio.ensure_future(reload())
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    loop.add_signal_handler(signal.SIGHUP, on_sighup)
    await app.start()
    log.info("pool %s running (worker %d)", app.node, worker_index)
    try:
        await stop.wait()
    finally:
        log.info("stopping %s", app.node)
        await app.stop()
        if app.ledger is not None:     # what a person stopping the pool wants to know: were shares lost?
            stats = app.ledger.snapshot()
            left = stats.pending_shares + stats.queued_shares
            log.info("stopped %s: %d shares accepted since start, %d written to Redis%s", app.node,
                     stats.shares_added, stats.shares_flushed,
                     f", {left} kept in the journal for the next start ({stats.last_error})" if left else "")


def _worker_env(config: Config, index: int, devnet_node: Any | None) -> dict[str, str]:
    """The environment of worker `index`: its overrides travel as one JSON document (any character in
    a password survives), never as TOML text built by string formatting."""
    env = dict(os.environ)
    env[WORKER_INDEX_ENV] = str(index)
    overrides: dict[str, Any] = msgspec.json.decode(env.get(config_module.OVERRIDES_ENV) or "{}")
    overrides.setdefault("stratum", {})["reuse_port"] = True
    if index > 0:
        overrides.setdefault("admin", {})["enabled"] = False   # one admin API per host, in worker 0
    if devnet_node is not None:
        overrides.setdefault("chain", {}).update(backend="bitcoind", nodes=[msgspec.to_builtins(devnet_node)])
    env[config_module.OVERRIDES_ENV] = msgspec.json.encode(overrides).decode()
    return env


CONFIG_ERROR_EXIT = 2           # what `geostratum run` exits with on a config error: restarting cannot help


def _exit_reason(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
        return f"killed by signal {-code}"
    return f"exit status {code}"


async def _supervise(config: Config, config_path: str | None, workers: int) -> int:
    """Start the workers and keep them running: one that dies (a crash, kill -9, the OOM killer) is
    started again with the same index, so it takes the same node name, journal and admin role; its
    journal replays what it had not flushed. A config error, or more than
    pool.worker_restart_limit deaths within pool.worker_restart_period_s, stops the pool instead."""
    devnet_server = None
    if config.chain.backend == "devnet":
        from pool.chain.devnet_server import serve_devnet

        devnet_server = await serve_devnet(config.chain.devnet, network=config.chain.network)
        log.info("devnet JSON-RPC for %d workers on %s", workers, devnet_server.url)
    node = devnet_server.node_config() if devnet_server else None
    args = [sys.executable, "-m", "pool.cli", "run", "--workers", "1"]
    if config_path:
        args += ["--config", config_path]
    children: dict[int, asyncio.subprocess.Process] = {}
    stop = asyncio.Event()
    codes: list[int] = []
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, lambda: [c.send_signal(signal.SIGHUP) for c in children.values()
                                                    if c.returncode is None])

    async def keep(index: int) -> None:
        try:
            await run_worker(index)
        except Exception:
            log.exception("worker %d could not be started; stopping the pool", index)
            codes.append(1)
            stop.set()

    async def run_worker(index: int) -> None:
        deaths: list[float] = []
        while not stop.is_set():
            child = await asyncio.create_subprocess_exec(*args, env=_worker_env(config, index, node))
            children[index] = child
            log.info("worker %d started (pid %d)", index, child.pid)
            code = await child.wait()
            if stop.is_set():
                return
            now = time.monotonic()
            deaths = [t for t in deaths if now - t < config.pool.worker_restart_period_s] + [now]
            if code == CONFIG_ERROR_EXIT or len(deaths) > config.pool.worker_restart_limit:
                log.error("worker %d exited (%s); stopping the pool", index, _exit_reason(code))
                codes.append(code if code > 0 else 1)
                stop.set()
                return
            log.warning("worker %d exited (%s); starting it again (%d of %d restarts in %.0f s)", index,
                        _exit_reason(code), len(deaths), config.pool.worker_restart_limit,
                        config.pool.worker_restart_period_s)

    keepers = [asyncio.create_task(keep(i)) for i in range(workers)]
    await stop.wait()
    for child in children.values():
        if child.returncode is None:
            child.send_signal(signal.SIGTERM)
    for child in children.values():
        try:
            await asyncio.wait_for(child.wait(), 15)
        except TimeoutError:
            child.kill()
            await child.wait()
        codes.append(child.returncode or 0)
    await asyncio.gather(*keepers, return_exceptions=True)
    if devnet_server is not None:
        await devnet_server.stop()
    return max(codes, default=0)


# Files a pool process holds besides its miners' sockets: listeners, Redis and PostgreSQL pools, the
# journal, the admin server's clients, the location databases, logs.
OTHER_OPEN_FILES = 1000


def open_files_for(max_connections: int) -> str:
    """Raise this process's open-files limit towards what stratum.limits.max_connections needs (up to the
    hard limit, which only root can lift); the warning to log when it still falls short, else ""."""
    need = max_connections + OTHER_OPEN_FILES
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need and (hard == resource.RLIM_INFINITY or hard > soft):
        soft = need if hard == resource.RLIM_INFINITY else min(need, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    if soft >= need:
        return ""
    return (f"open files: this process may open {soft}, but stratum.limits.max_connections = {max_connections} "
            f"needs about {need}: accepting miners past ~{max(soft - OTHER_OPEN_FILES, 0)} fails with 'Too many "
            "open files'; raise the limit (ulimit -n, LimitNOFILE=, docker ulimits) or lower the key")


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = config_module.load(args.config)
        config_module.require_books(config)
    except config_module.ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    short = open_files_for(config.stratum.limits.max_connections)   # workers inherit the raised limit
    if short:
        log.warning(short)
    if args.workers == 1:
        worker_index = int(os.environ.get(WORKER_INDEX_ENV, "0"))
        uvloop.run(_serve_one(config, worker_index, args.config))
        return 0
    return uvloop.run(_supervise(config, args.config, args.workers))


LOG_LEVELS = ["debug", "info", "warning", "error", "critical"]


def _workers(text: str) -> int:
    try:
        workers = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of processes") from None
    if workers < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: at least 1 process")
    return workers


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("run", help="run the pool (configs/devnet.toml: the embedded devnet)",
                            parents=[config_option()])
    parser.add_argument("--workers", type=_workers, default=1, metavar="N",
                        help="processes sharing the stratum port (SO_REUSEPORT; default: 1)")
    parser.add_argument("--log-level", default="info", type=str.lower, choices=LOG_LEVELS,
                        help="the least important lines logged (default: info)")
    parser.set_defaults(func=run)
