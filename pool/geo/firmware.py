"""Firmware family from the mining.subscribe user agent, driven by the data table data/firmware.csv.

A family names the software, not the machine: Braiins OS and LUXminer replace the stock firmware of
Antminers, so the maker is an inference the table states separately.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

from pool.geo.tables import firmware_rows

UNKNOWN_FAMILY = "unknown"


class FirmwareClassifier:
    """`classify(user_agent) -> family`: first row whose pattern occurs in the agent (case-insensitive)."""

    def __init__(self, extra_rows: Iterable[tuple[str, str]] = (), cache_size: int = 4096) -> None:
        # Extra rows (pattern, family) go first so an operator can override the shipped table.
        self._rows = tuple((pattern.lower(), family) for pattern, family in extra_rows) + tuple(
            (pattern, family) for pattern, family, _maker in firmware_rows()
        )
        self._makers = {family: maker for _pattern, family, maker in firmware_rows()}
        self.classify = functools.lru_cache(maxsize=cache_size)(self._classify)

    def _classify(self, user_agent: str | None) -> str:
        if not user_agent:
            return UNKNOWN_FAMILY
        agent = user_agent.lower()
        for pattern, family in self._rows:
            if pattern in agent:
                return family
        return UNKNOWN_FAMILY

    def __call__(self, user_agent: str | None) -> str:
        return self.classify(user_agent)

    def maker(self, family: str) -> str:
        """The usual maker of the hardware a family runs on ("" when it runs on anything)."""
        return self._makers.get(family, "")

    @property
    def families(self) -> list[str]:
        return [*dict.fromkeys(family for _pattern, family in self._rows), UNKNOWN_FAMILY]


@functools.cache
def default_classifier() -> FirmwareClassifier:
    return FirmwareClassifier()


def classify_firmware(user_agent: str | None) -> str:
    return default_classifier().classify(user_agent)
