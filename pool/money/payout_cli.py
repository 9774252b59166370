"""`geostratum payouts`: balances, payout batches (JSON + CSV export), sending them with the node's wallet.

With `money.dsn` set the books are in PostgreSQL (pool.money): a batch debits every account at or above
the threshold in one transaction; `send` commits the batch as sending before it calls `sendmany`, whose
comment carries the batch key, so a retry after a crash or a lost reply finds the payment instead of
paying twice. There is no other home for money: a SOLO pool keeps no balances and needs no database, and
`migrate-from-redis` moves the ledger older versions kept in Redis into PostgreSQL.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

import asyncpg

from pool import config as config_module
from pool.bitcoin.address import is_valid_address
from pool.chain.rpc import RpcClient, RpcError
from pool.config import Config
from pool.money.books import Books
from pool.money.db import BooksUnavailable, open_pool
from pool.money.payments import Payouts
from pool.shares.payouts import PayoutError, btc_amount, export_batch
from pool.shares.schemes import MSAT_PER_SAT


def _wallet_rpc(config: Config) -> RpcClient:
    """The first node's wallet endpoint. No transport retries: a retried sendmany could pay twice; the
    payout engine's own retry checks the wallet for the batch first."""
    if not config.chain.nodes:
        raise PayoutError("chain.nodes is empty: sending a payout needs a bitcoind wallet")
    node = config.chain.nodes[0]
    wallet = config.payouts.wallet
    url = f"{node.url.rstrip('/')}/wallet/{wallet}" if wallet else node.url   # "": the default wallet
    return RpcClient(url, user=node.user, password=node.password, cookie_file=node.cookie_file,
                     name=f"{node.name or 'node'}-wallet", timeout=config.chain.rpc_timeout, retries=0)


async def _actions(args: argparse.Namespace, config: Config, books: Books, batches: Payouts) -> int:
    if args.action == "balances":
        for account, msat in sorted((await books.balances()).items(), key=lambda kv: -kv[1]):
            print(f"{account}\t{btc_amount(msat // MSAT_PER_SAT)}")
    elif args.action == "list":
        for batch in await batches.batches(args.limit):
            print(f"{batch.key}\t{batch.status}\t{len(batch.payments)} payments\t"
                  f"{btc_amount(batch.total_sat)} BTC\t{batch.txid or batch.last_error}")
    elif args.action == "create":
        network = config.chain.network
        threshold = config.payouts.threshold_sat if args.threshold is None else args.threshold
        batch = await batches.create_batch(
            threshold, address_for=lambda account: account if is_valid_address(account, network) else None)
        if batch is None:
            print("no account is at or above the threshold with a payout address")
            return 0
        json_path, csv_path = export_batch(batch, args.out or config.payouts.export_dir)
        print(f"batch {batch.key}: {len(batch.payments)} payments, {btc_amount(batch.total_sat)} BTC")
        print(f"exported {json_path} and {csv_path}")
    elif args.action == "export":
        json_path, csv_path = export_batch(await batches.batch(args.key), args.out or config.payouts.export_dir)
        print(f"exported {json_path} and {csv_path}")
    elif args.action == "send":
        rpc = _wallet_rpc(config)
        try:
            txid = await batches.send_batch(args.key, lambda method, params: rpc.call(method, params),
                                            resend_after_s=config.payouts.resend_after_s)
        finally:
            await rpc.close()
        print(f"batch {args.key} paid in {txid}")
    elif args.action == "confirm":
        rpc = _wallet_rpc(config)
        try:
            done = await batches.confirm_sent(lambda method, params: rpc.call(method, params),
                                              config.payouts.payout_confirmations)
        finally:
            await rpc.close()
        for key in done:
            print(f"batch {key} confirmed")
        print(f"{len(done)} batches reached {config.payouts.payout_confirmations} confirmations")
    elif args.action == "cancel":
        if not await batches.cancel_batch(args.key):
            print(f"batch {args.key} is not in status created; nothing cancelled", file=sys.stderr)
            return 1
        print(f"batch {args.key} cancelled; its amounts are credited back")
    return 0


async def _run(args: argparse.Namespace, config: Config) -> int:
    if args.action == "migrate-from-redis":
        from pool.money.redis_import import import_redis_ledger

        return await import_redis_ledger(config)
    if not config.money.enabled:   # only SOLO gets here (pool.config requires a DSN otherwise)
        print("config error: money.dsn: is empty: a SOLO pool keeps no balances or payout batches", file=sys.stderr)
        return 2
    pool = await open_pool(config.money, "geostratum-payouts")
    try:
        return await _actions(args, config, Books(pool, config.payouts.pool_account),
                              Payouts(pool, config.payouts.sendmany_minconf))
    finally:
        await pool.close()


def run(args: argparse.Namespace) -> int:
    try:
        config = config_module.load(args.config)
        config_module.require_books(config)
        return asyncio.run(_run(args, config))
    except config_module.ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    except PayoutError as exc:
        print(f"payout error: {exc}", file=sys.stderr)
        return 1
    except RpcError as exc:
        print(f"wallet error: {exc}", file=sys.stderr)
        return 1
    except BooksUnavailable as exc:
        print(f"books error: {exc}", file=sys.stderr)
        return 1
    except asyncpg.PostgresError as exc:
        print(f"books error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    except (OSError, ConnectionError) as exc:
        print(f"cannot reach Redis, PostgreSQL or the wallet: {exc}", file=sys.stderr)
        return 1


def register(sub: Any) -> None:
    parser = sub.add_parser("payouts", help="balances and payout batches (export, sendmany, cancel)")
    parser.add_argument("--config", default=None)
    actions = parser.add_subparsers(dest="action", required=True)
    actions.add_parser("balances", help="unpaid balance per account")
    listing = actions.add_parser("list", help="recent payout batches")
    listing.add_argument("--limit", type=int, default=20)
    create = actions.add_parser("create", help="debit every account above the threshold into a batch and export it")
    create.add_argument("--threshold", type=int, default=None, help="satoshis (default: payouts.threshold_sat)")
    create.add_argument("--out", default="", help="export directory (default: payouts.export_dir)")
    export = actions.add_parser("export", help="write a batch's JSON + CSV again (e.g. after a crash at create)")
    export.add_argument("key")
    export.add_argument("--out", default="", help="export directory (default: payouts.export_dir)")
    send = actions.add_parser("send", help="pay a batch with the wallet's sendmany (idempotent)")
    send.add_argument("key")
    actions.add_parser("confirm", help="mark sent batches confirmed once the wallet shows "
                                       "payouts.payout_confirmations")
    cancel = actions.add_parser("cancel", help="credit a never-sent batch back")
    cancel.add_argument("key")
    actions.add_parser("migrate-from-redis", help="move the Redis ledger's balances and batches into PostgreSQL")
    parser.set_defaults(func=run)
