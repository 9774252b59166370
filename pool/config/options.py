"""`--config FILE` on the command line: one option, accepted wherever a person puts it.

Every command that reads a config takes this parser as a parent, on the command and on each of its
actions, so `geostratum --config F payouts balances`, `geostratum payouts --config F balances` and
`geostratum payouts balances --config F` are the same command. The option has no default of its own
(argparse.SUPPRESS): a level that does not see it leaves what an outer level parsed; the top-level
parser's default (None: the built-in defaults) applies when none does.
"""

from __future__ import annotations

import argparse

CONFIG_HELP = "config TOML (default: the built-in devnet defaults); GEOSTRATUM__SECTION__KEY variables override it"


def config_option(help: str = CONFIG_HELP) -> argparse.ArgumentParser:
    """A parent parser holding --config; `reads_config` tells the top level this command uses it."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--config", metavar="FILE", default=argparse.SUPPRESS, help=help)
    parent.set_defaults(reads_config=True)
    return parent
