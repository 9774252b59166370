"""The `geostratum` command. Thin: parses arguments and calls into the package."""

from __future__ import annotations

import argparse
import json
import platform
import sys
from collections.abc import Callable, Sequence
from importlib import metadata
from typing import Any, NoReturn

from pool.config.options import config_option


def _version() -> str:
    try:
        return metadata.version("geostratum")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def cmd_info(args: argparse.Namespace) -> int:
    from pool import native

    print(f"geostratum {_version()}")
    print(f"python {platform.python_version()} ({platform.python_implementation()})")
    print(f"platform {platform.platform()} {platform.machine()}")
    print(f"sha256 backend {native.active_backend()} (supported: {', '.join(native.supported_backends())}; "
          f"forced with {native.BACKEND_ENV})")
    return 0


def cmd_vectors(args: argparse.Namespace) -> int:
    from pool.native.vectors import check_file

    try:
        results = check_file(args.file)
    except OSError as exc:
        print(f"error: cannot read {args.file}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except (ValueError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for result in results:
        status = "ok  " if result.ok else "FAIL"
        print(f"{status} {result.block:<45} {result.case:<38} {result.checker:<10} {result.detail}")
    failed = sum(not result.ok for result in results)
    print(f"{len(results)} checks, {len(results) - failed} passed, {failed} failed")
    return 1 if failed else 0


def cmd_bench(args: argparse.Namespace) -> int:
    if args.what == "validate":
        from pool.native import benchmark

        figures = benchmark.run(checks=args.checks, repeats=args.repeats)
        print("RESULT " + json.dumps(figures))
        return 0
    raise AssertionError(args.what)


def cmd_check_config(args: argparse.Namespace) -> int:
    from pool import config

    if args.file is not None and args.config is not None and args.file != args.config:
        print(f"check-config: two files given ({args.file} and --config {args.config}): check one at a time",
              file=sys.stderr)
        return 2
    path = args.file if args.file is not None else args.config
    if path is None:
        print("check-config: give the config file to check: geostratum check-config FILE", file=sys.stderr)
        return 2
    try:
        config.require_books(config.load(path))
    except config.ConfigError as exc:
        print(f"{path}: {exc}" if exc.key else str(exc), file=sys.stderr)   # a file-level error names the file
        return 1
    print(f"{path}: ok")
    return 0


class Parser(argparse.ArgumentParser):
    """Errors in one line: what is wrong, then where the usage is (argparse prints the usage first)."""

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        parsed, extras = super().parse_known_args(args, namespace)
        if not hasattr(parsed, "command_parser"):    # the innermost command parsed first: it names itself
            parsed.command_parser = self
        return parsed, extras

    def error(self, message: str) -> NoReturn:
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction) and "required" in message:
                message = f"{message} (one of: {', '.join(action.choices)})"
        self.exit(2, f"{self.prog}: error: {message}; see `{self.prog} --help`\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="geostratum", description="Stratum V1 mining pool with regional telemetry",
                    epilog="--config FILE may come before or after the command and its action. To see it all run: "
                           "./scripts/demo.sh (a pool on the embedded devnet, a simulated fleet, the dashboard); "
                           "`geostratum COMMAND --help` for each command.")
    parser.add_argument("--version", action="version", version=f"geostratum {_version()}")
    parser.add_argument("--config", metavar="FILE", default=argparse.SUPPRESS,
                        help="config TOML for the command that follows (the same as its own --config)")
    parser.set_defaults(config=None, reads_config=False)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sub.add_parser("info", help="version, platform and the active SHA-256 back end").set_defaults(func=cmd_info)

    vectors = sub.add_parser("vectors", help="check a vectors file with the reference and every back end")
    vectors.add_argument("file", help="a JSON file of Stratum jobs and submits with known results "
                                      "(tests/data/vectors/mainnet_blocks.json: real mainnet blocks)")
    vectors.set_defaults(func=cmd_vectors)

    bench = sub.add_parser("bench", help="benchmarks (validate: share checks per second, each SHA-256 back end "
                                         "against hashlib)")
    bench.add_argument("what", choices=["validate"], help="validate: the share check (the pool's hot path)")
    bench.add_argument("--checks", type=int, default=100_000, help="share checks per repeat (default: 100000)")
    bench.add_argument("--repeats", type=int, default=7, help="repeats; the median is reported (default: 7)")
    bench.set_defaults(func=cmd_bench)

    check = sub.add_parser("check-config", help="validate a config file; names the bad key and why",
                           parents=[config_option("the config file to check (or give it as FILE)")])
    check.add_argument("file", nargs="?", default=None, help="the config file to check")
    check.set_defaults(func=cmd_check_config)

    for extend in _EXTENSIONS:
        extend(sub)
    return parser


def _register_run(sub: argparse._SubParsersAction) -> None:
    from pool import runner

    runner.register(sub)


def _register_simulate(sub: argparse._SubParsersAction) -> None:
    from pool.sim import cli as sim_cli

    sim_cli.register(sub)


def _register_export(sub: argparse._SubParsersAction) -> None:
    from pool.geo import export_cli

    parser = sub.add_parser("export", help="research exports (CCAF layouts, rich CSV/JSON, charts)",
                            parents=[config_option()])
    export_cli.add_arguments(parser)
    parser.set_defaults(func=export_cli.run)


def _register_geo(sub: argparse._SubParsersAction) -> None:
    from pool.geo import update

    update.register(sub)


def _register_payouts(sub: argparse._SubParsersAction) -> None:
    from pool.money import payout_cli

    payout_cli.register(sub)


def _register_db(sub: argparse._SubParsersAction) -> None:
    from pool.money import cli as money_cli

    money_cli.register(sub)


# Subcommands that live with the parts they drive register here.
_EXTENSIONS: list[Callable[[argparse._SubParsersAction], None]] = [_register_run, _register_simulate,
                                                                   _register_export, _register_geo, _register_payouts,
                                                                   _register_db]


def main(argv: Sequence[str] | None = None) -> int:
    args, extras = build_parser().parse_known_args(argv)
    if extras:
        args.command_parser.error(f"unrecognized arguments: {' '.join(extras)}")
    if args.config is not None and not args.reads_config:
        args.command_parser.error(f"--config: {args.command} reads no config file (these do: run, export, geo update, "
                                  "payouts, db, check-config)")
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
