"""`geostratum export`: research exports from the Redis rollups to a file or stdout."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
from pathlib import Path
from typing import TextIO

from pool.config.options import config_option
from pool.geo.exports import EXPORTS, LAYOUTS, ExportResult, export, parse_day, resolve, resolve_range
from pool.geo.periods import PERIODS

PROGRESS_MIN_DAYS = 31


class ProgressBar:
    """A one-line text bar on a terminal stream (redrawn in place)."""

    def __init__(self, stream: TextIO, width: int = 40) -> None:
        self.stream, self.width, self._last = stream, width, -1

    def __call__(self, done: int, total: int) -> None:
        filled = self.width * done // max(total, 1)
        if filled == self._last and done < total:
            return
        self._last = filled
        bar = "#" * filled + "." * (self.width - filled)
        self.stream.write(f"\rexport [{bar}] {done}/{total} days")
        if done >= total:
            self.stream.write("\n")
        self.stream.flush()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--layout", choices=list(LAYOUTS), default="ccaf-countries", metavar="LAYOUT",
                        help=f"what to produce, the same names as GET /api/v1/exports/NAME: {', '.join(EXPORTS)} "
                             "(or NAME-FORMAT, e.g. regions-json; default: ccaf-countries)")
    parser.add_argument("--format", help="csv, json or svg, as the layout offers (default: its first)")
    parser.add_argument("--period", choices=list(PERIODS), default="monthly", help="period length (default: monthly)")
    parser.add_argument("--start", help="first day YYYY-MM-DD (default: the first day of the current period)")
    parser.add_argument("--end", help="last day YYYY-MM-DD, inclusive (default: today, UTC); every whole period "
                                      "the range touches is exported")
    parser.add_argument("-o", "--output", help="file to write, '-' for stdout (default: a descriptive "
                                               "file name in the current directory)")
    parser.add_argument("--redis-url", help="override [redis].url")
    bar = parser.add_mutually_exclusive_group()
    bar.add_argument("--progress", dest="progress", action="store_true", default=None,
                     help="always show the progress bar")
    bar.add_argument("--no-progress", dest="progress", action="store_false",
                     help=f"never show it (default: shown on a terminal for ranges over {PROGRESS_MIN_DAYS} days)")


NO_DATA_STATUS = 3    # the range holds no accepted share: distinct from errors (1, 2) and success (0)


async def _run(args: argparse.Namespace) -> ExportResult:
    import redis.asyncio as aioredis

    from pool.config import load

    config = load(args.config)
    if args.output and args.output != "-" and not Path(args.output).parent.is_dir():
        raise ValueError(f"cannot write {args.output}: folder {Path(args.output).parent} does not exist")
    resolve(args.layout, args.format)
    first = parse_day(args.start, "--start") if args.start else None
    last = parse_day(args.end, "--end") if args.end else None
    if (first is None) != (last is None):
        raise ValueError("give both --start and --end (inclusive), or neither for the current period to date")
    first, last, defaulted = resolve_range(args.period, first, last, dt.datetime.now(dt.UTC).date())
    args.first, args.last = first, last
    show = args.progress
    if show is None:
        show = sys.stderr.isatty() and (last - first).days + 1 > PROGRESS_MIN_DAYS
    client = aioredis.Redis.from_url(args.redis_url or config.redis.url)
    try:
        return await export(client, config.geo, args.layout, args.period, first, last, fmt=args.format,
                            prefix=config.redis.key_prefix, defaulted=defaulted,
                            progress=ProgressBar(sys.stderr) if show else None)
    finally:
        await client.aclose()


def run(args: argparse.Namespace) -> int:
    from redis.exceptions import RedisError

    from pool.config.errors import ConfigError

    try:
        result = asyncio.run(_run(args))
    except (ValueError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (RedisError, OSError) as exc:
        print(f"error: cannot read the rollups from Redis: {exc}", file=sys.stderr)
        return 1
    if result.empty:
        print(f"no data for {result.range_text} (nothing written)", file=sys.stderr)
        return NO_DATA_STATUS
    print(f"export: {args.layout} for {result.range_text}", file=sys.stderr)
    if args.output == "-":
        sys.stdout.buffer.write(result.body)
        sys.stdout.flush()
        return 0
    path = Path(args.output or result.filename)
    try:
        path.write_bytes(result.body)
    except OSError as exc:
        print(f"error: cannot write {path}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print(f"wrote {path} ({len(result.body)} bytes, {result.content_type})", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="geostratum export", description=__doc__, parents=[config_option()])
    parser.set_defaults(config=None)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
