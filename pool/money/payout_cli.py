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
import datetime as dt
import sys
from typing import Any

import asyncpg

from pool import config as config_module
from pool.bitcoin.address import is_valid_address
from pool.bitcoin.amount import btc_amount, parse_sat
from pool.chain.rpc import RpcClient, RpcError
from pool.config import Config
from pool.config.options import config_option
from pool.money.books import Books
from pool.money.db import BooksUnavailable, open_pool
from pool.money.payments import Payouts
from pool.shares.payouts import PayoutError, export_batch
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


def _credited_when(config: Config) -> str:
    if config.payouts.scheme in ("pps", "fpps"):
        return f"{config.payouts.scheme.upper()}: accepted shares are credited as they come"
    return (f"{config.payouts.scheme.upper()}: a found block credits its miners at "
            f"payouts.maturity_confirmations = {config.payouts.maturity_confirmations} confirmations")


def _threshold_text(sat: int) -> str:
    return f"{btc_amount(sat)} BTC = {sat:,} sat"


def print_balances(balances: dict[str, int], config: Config) -> None:
    """A table in BTC, largest first, with the total; amounts are whole satoshis (the books keep msat)."""
    print(f"unpaid balances in BTC ({_credited_when(config)}; paid from "
          f"payouts.threshold_sat = {_threshold_text(config.payouts.threshold_sat)})")
    if not balances:
        print("no account holds a balance yet")
        return
    rows = sorted(balances.items(), key=lambda kv: (-kv[1], kv[0]))
    pool_account = config.payouts.pool_account
    width = max(len("account"), *(len(account) for account in balances))
    print(f"{'account':<{width}}  {'BTC':>16}")
    for account, msat in rows:
        note = "  (the pool's fee account)" if account == pool_account else ""
        print(f"{account:<{width}}  {btc_amount(msat // MSAT_PER_SAT):>16}{note}")
    miners = [msat for account, msat in balances.items() if account != pool_account]
    split = f"{len(miners)} miner accounts {btc_amount(sum(miners) // MSAT_PER_SAT)} BTC"
    if pool_account in balances:
        split += f" + the pool's {btc_amount(balances[pool_account] // MSAT_PER_SAT)} BTC"
    print(f"{'total':<{width}}  {btc_amount(sum(balances.values()) // MSAT_PER_SAT):>16}  ({split})")


async def _actions(args: argparse.Namespace, config: Config, books: Books, batches: Payouts) -> int:
    if args.action == "balances":
        print_balances(await books.balances(), config)
    elif args.action == "list":
        found = await batches.batches(args.limit)
        if not found:
            print("no payout batch yet (`geostratum payouts create` makes one)")
        else:
            print(f"{'batch':<32}  {'created (UTC)':<16}  {'status':<9}  {'payments':>8}  {'total BTC':>16}  "
                  "txid or last error")
        for batch in found:
            created = dt.datetime.fromtimestamp(batch.created_at, dt.UTC).strftime("%Y-%m-%d %H:%M")
            print(f"{batch.key:<32}  {created:<16}  {batch.status:<9}  {len(batch.payments):>8}  "
                  f"{btc_amount(batch.total_sat):>16}  {batch.txid or batch.last_error}")
    elif args.action == "create":
        network = config.chain.network
        threshold = config.payouts.threshold_sat if args.threshold is None else args.threshold
        batch = await batches.create_batch(
            threshold, address_for=lambda account: account if is_valid_address(account, network) else None)
        if batch is None:
            print(f"no account with a payout address holds {_threshold_text(threshold)} or more; no batch made")
            return 0
        json_path, csv_path = export_batch(batch, args.out or config.payouts.export_dir)
        print(f"batch {batch.key}: {len(batch.payments)} payments, {btc_amount(batch.total_sat)} BTC "
              f"(every account at or above {_threshold_text(threshold)})")
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
        print(f"{len(done)} {'batch' if len(done) == 1 else 'batches'} reached payouts.payout_confirmations = "
              f"{config.payouts.payout_confirmations} confirmations")
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


def _threshold(text: str) -> int:
    try:
        sat = parse_sat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if sat <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: the threshold must be more than 0 sat")
    return sat


def register(sub: Any) -> None:
    config = [config_option()]
    parser = sub.add_parser("payouts", help="balances and payout batches (export, sendmany, cancel)", parents=config)
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    actions.add_parser("balances", help="unpaid balance per account", parents=config)
    listing = actions.add_parser("list", help="recent payout batches", parents=config)
    listing.add_argument("--limit", type=int, default=20, help="the newest N batches (default: 20)")
    create = actions.add_parser("create", help="debit every account above the threshold into a batch and export it",
                                parents=config)
    create.add_argument("--threshold", type=_threshold, default=None, metavar="AMOUNT",
                        help="pay accounts holding at least this much: 0.01BTC or 1000000sat (a bare whole "
                             "number is satoshis; default: payouts.threshold_sat)")
    create.add_argument("--out", default="", metavar="DIR", help="export directory (default: payouts.export_dir)")
    export = actions.add_parser("export", help="write a batch's JSON + CSV again (e.g. after a crash at create)",
                                parents=config)
    export.add_argument("key", help="the batch's key (the first column of `payouts list`)")
    export.add_argument("--out", default="", metavar="DIR", help="export directory (default: payouts.export_dir)")
    send = actions.add_parser("send", help="pay a batch with the wallet's sendmany (idempotent)", parents=config)
    send.add_argument("key", help="the batch's key (the first column of `payouts list`)")
    actions.add_parser("confirm", help="mark sent batches confirmed once the wallet shows "
                                       "payouts.payout_confirmations", parents=config)
    cancel = actions.add_parser("cancel", help="credit a never-sent batch back", parents=config)
    cancel.add_argument("key", help="the batch's key (the first column of `payouts list`)")
    actions.add_parser("migrate-from-redis", help="move the Redis ledger's balances and batches into PostgreSQL",
                       parents=config)
    parser.set_defaults(func=run)
