"""The `geostratum` command as a newcomer meets it (the real CLI in a subprocess): every command, action
and option says what it is in --help, and a mistyped argument is refused in one line that points at the
command's --help."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from pool.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]


def geostratum(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pool.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, check=False)


def parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    found = [parser]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):
                found += parsers(child)
    return found


def test_every_command_and_option_has_help() -> None:
    missing = [f"{p.prog} {a.option_strings or a.dest}" for p in parsers(build_parser()) for a in p._actions
               if not a.help and not isinstance(a, argparse._SubParsersAction)]
    assert missing == []
    for p in parsers(build_parser()):
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                assert all(choice.help for choice in action._choices_actions), p.prog


@pytest.mark.parametrize(("args", "error"), [
    (["run", "--log-level", "loud"], "geostratum run: error: argument --log-level: invalid choice: 'loud'"),
    (["run", "--workers", "0"], "geostratum run: error: argument --workers: '0': at least 1 process"),
    (["simulate", "--miners", "many"], "geostratum simulate: error: argument --miners: invalid int value: 'many'"),
    (["export", "--period", "yearly"], "geostratum export: error: argument --period: invalid choice: 'yearly'"),
    (["db"], "geostratum db: error: the following arguments are required: ACTION (one of: migrate, status)"),
])
def test_a_bad_argument_is_one_line_naming_the_help(args: list[str], error: str) -> None:
    done = geostratum(*args)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.startswith(error) and done.stderr.count("\n") == 1
    assert done.stderr.endswith(f"; see `geostratum {args[0]} --help`\n")


def test_files_that_cannot_be_read_are_named_once(tmp_path: Path) -> None:
    raw = geostratum("vectors", str(ROOT / "tests/data/vectors/block413567.raw"))
    assert raw.returncode == 2 and raw.stderr.endswith("block413567.raw is not JSON (not even text: a raw block?)\n")
    missing = geostratum("vectors", str(tmp_path / "none.json"))
    assert missing.returncode == 2
    assert missing.stderr == f"error: cannot read {tmp_path / 'none.json'}: No such file or directory\n"
    bad = tmp_path / "bad.toml"
    bad.write_text("[stratum\n")
    checked = geostratum("check-config", str(bad))
    assert checked.returncode == 1 and checked.stderr.startswith(f"{bad} is not valid TOML: ")
    assert checked.stderr.count(str(bad)) == 1
    checked = geostratum("check-config", "--config", str(tmp_path / "none.toml"))
    assert (checked.returncode, checked.stderr) == (1, f"config file {tmp_path / 'none.toml'} not found\n")
    checked = geostratum("check-config")
    assert checked.returncode == 2
    assert checked.stderr == "check-config: give the config file to check: geostratum check-config FILE\n"
