"""The project metadata as setuptools reads it: the licence is an SPDX expression (the TOML-table form
is deprecated and warns on every install) and its text ships in the distribution."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from setuptools.config.pyprojecttoml import apply_configuration
from setuptools.dist import Distribution

ROOT = Path(__file__).resolve().parents[1]


def test_pyproject_applies_without_a_warning_and_names_its_licence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)             # license-files and readme are found relative to the project
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dist = apply_configuration(Distribution(), ROOT / "pyproject.toml")
    assert [str(w.message).splitlines()[0] for w in caught] == []
    assert dist.metadata.license_expression == "MIT"
    assert dist.metadata.license_files == ["LICENSE"]
    assert "MIT License" in (ROOT / "LICENSE").read_text()
