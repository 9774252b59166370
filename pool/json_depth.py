"""How deeply a JSON text nests, without decoding it (bottom floor: the Stratum session and the admin
API both refuse deep nesting before a recursive decoder or converter sees it)."""

from __future__ import annotations

import re

_STRING_OR_BRACKET = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def nesting_depth(text: bytes) -> int:
    """Deepest array/object nesting of a JSON text (brackets inside strings do not count)."""
    depth = deepest = 0
    for match in _STRING_OR_BRACKET.finditer(text):
        token = match.group()
        if token in (b"[", b"{"):
            depth += 1
            if depth > deepest:
                deepest = depth
        elif token in (b"]", b"}"):
            depth -= 1
    return deepest


def deeper_than(text: bytes, limit: int) -> bool:
    """True when `text` nests deeper than `limit`; cheap for the usual shallow text (no scan unless
    it holds more than `limit` brackets)."""
    if len(text) <= 2 * limit or text.count(b"[") + text.count(b"{") <= limit:
        return False
    return nesting_depth(text) > limit
