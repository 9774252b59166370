"""`geostratum info` and `geostratum vectors`: what operators run to check a build on their hardware."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pool import native
from pool.cli import main
from tests.support import paths


def test_info_names_the_active_backend(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("geostratum ") and f"sha256 backend {native.active_backend()}" in out
    assert "python 3." in out


def test_vectors_pass_on_the_real_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["vectors", str(paths.VECTORS / "mainnet_blocks.json")]) == 0
    lines = capsys.readouterr().out.splitlines()
    checkers = 1 + len(native.supported_backends())
    assert lines[-1] == f"{24 * checkers} checks, {24 * checkers} passed, 0 failed"
    assert all(line.startswith("ok") for line in lines[:-1])


def test_vectors_exit_1_on_any_mismatch(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = json.loads((paths.VECTORS / "mainnet_blocks.json").read_text())
    data["blocks"][1]["expected"]["block_hash"] = "00" * 32          # one wrong expectation
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(data))
    assert main(["vectors", str(broken)]) == 1
    out = capsys.readouterr().out
    failed = [line for line in out.splitlines() if line.startswith("FAIL")]
    assert len(failed) == 1 + len(native.supported_backends())       # that case, once per checker
    assert all("mainnet_481829_segwit" in line and "positive" in line for line in failed)


def test_vectors_unreadable_file_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["vectors", str(tmp_path / "missing.json")]) == 2
    assert "error:" in capsys.readouterr().err


def test_bench_validate_ends_with_a_result_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "validate", "--checks", "2000", "--repeats", "1"]) == 0
    last = capsys.readouterr().out.splitlines()[-1]
    assert last.startswith("RESULT ")
    figures = json.loads(last[len("RESULT "):])
    assert figures["backend"] == native.best_backend()
    assert set(figures["per_backend_checks_per_s"]) == set(native.supported_backends())
    for key in ("native_checks_per_s", "reference_checks_per_s", "ceiling_checks_per_s"):
        assert figures[key] > 0
    assert figures["compressions_per_check"] == 45          # 12 branches, 250-byte coinbase: 6 + 36 + 3
