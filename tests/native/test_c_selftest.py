"""The C core's stand-alone self-test: natively, under AddressSanitizer and valgrind, and cross-compiled
for aarch64 (ARMv8 SHA2 and portable paths) under qemu-aarch64-static with a CPU model that has SHA2.

The toolchains are installed by scripts/setup.sh (gcc-aarch64-linux-gnu, qemu-user-static, valgrind).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

NATIVE = Path(__file__).resolve().parents[2] / "native"


def _make(target: str, tmp_path: Path) -> Path:
    out = tmp_path / target
    subprocess.run(["make", "-s", "-C", str(NATIVE), target], check=True, capture_output=True, text=True)
    shutil.move(str(NATIVE / target), out)
    return out


def _run(cmd: list[str]) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 failure(s)" in proc.stdout
    return proc.stdout


def _require(tool: str) -> None:
    if shutil.which(tool) is None:
        pytest.fail(f"{tool} is not installed; run scripts/setup.sh (the README's set-up) first")


def test_selftest_native(tmp_path: Path) -> None:
    binary = _make("selftest", tmp_path)
    out = _run([str(binary)])
    assert "portable:" in out


def test_selftest_under_address_sanitizer(tmp_path: Path) -> None:
    _run([str(_make("selftest-asan", tmp_path))])


def test_selftest_under_valgrind(tmp_path: Path) -> None:
    _require("valgrind")
    binary = _make("selftest", tmp_path)
    _run(["valgrind", "-q", "--error-exitcode=3", "--leak-check=full", str(binary), "portable"])


@pytest.mark.parametrize("backend", ["armv8", "portable"])
def test_selftest_aarch64_under_qemu(tmp_path: Path, backend: str) -> None:
    _require("aarch64-linux-gnu-gcc")
    _require("qemu-aarch64-static")
    binary = _make("selftest-aarch64", tmp_path)
    out = _run(["qemu-aarch64-static", "-cpu", "max", str(binary), backend])
    assert f"{backend}:" in out
    assert "1 back end(s) tested" in out
