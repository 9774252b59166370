from __future__ import annotations

import pytest

from pool.geo import FirmwareClassifier, classify_firmware


@pytest.mark.parametrize(("agent", "family"), [
    ("bmminer/2.0.0", "Bitmain"),
    ("Antminer S19j Pro", "Bitmain"),
    ("btminer/3.1.0", "MicroBT"),
    ("WhatsMiner M30S", "MicroBT"),
    ("Avalon1246/cgminer-4.11", "Canaan"),
    ("bosminer/1.2.3", "Braiins OS"),
    ("BOSminer-plus-tuner/22.08 Antminer", "Braiins OS"),
    ("LUXminer/2024.5.1 antminer", "LUXminer"),
    ("cgminer/4.12.0", "cgminer"),
    ("cpuminer/2.5.1", "cpuminer"),
    ("cpuminer-opt-26.1-x64L", "cpuminer"),
    ("NiceHash/1.0.0", "NiceHash"),
    ("", "unknown"),
    (None, "unknown"),
    ("my-own-miner/0.1", "unknown"),
])
def test_families(agent: str | None, family: str) -> None:
    assert classify_firmware(agent) == family


def test_table_is_extensible() -> None:
    classifier = FirmwareClassifier(extra_rows=[("iceriver", "IceRiver"), ("cgminer/9", "Custom")])
    assert classifier("IceRiver KS0") == "IceRiver"
    assert classifier("cgminer/9.0") == "Custom"        # extra rows take precedence
    assert classifier("cgminer/4.0") == "cgminer"
    assert "IceRiver" in classifier.families and classifier.families[-1] == "unknown"
    assert classifier.maker("MicroBT") == "MicroBT"
    assert "likely" in classifier.maker("Braiins OS")
