"""Bitcoin amounts as people write them: "0.01BTC", "1000000sat", and back to an exact 8-decimal string."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

SAT_PER_BTC = 100_000_000
_AMOUNT = re.compile(r"\s*([0-9][0-9_,]*(?:\.[0-9]*)?|\.[0-9]+)\s*([a-z]*)\s*", re.IGNORECASE)
_UNITS = {"btc": SAT_PER_BTC, "sat": 1, "sats": 1, "satoshi": 1, "satoshis": 1}


def btc_amount(sat: int) -> str:
    """Exact decimal string for Bitcoin Core (no float rounding)."""
    sign = "-" if sat < 0 else ""
    sat = abs(sat)
    return f"{sign}{sat // SAT_PER_BTC}.{sat % SAT_PER_BTC:08d}"


def parse_sat(text: str) -> int:
    """'0.01BTC', '0.01 btc', '1000000sat', '1_000_000 sats' or a bare whole number of satoshis -> satoshis.
    ValueError with a one-line reason: no unit on a fraction (BTC or sat?), more than 8 decimals of BTC,
    a fraction of a satoshi, an unknown unit."""
    match = _AMOUNT.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not an amount: write it as 0.01BTC or 1000000sat")
    number, unit = match.group(1).replace("_", "").replace(",", ""), match.group(2).lower()
    if not unit:
        if "." in number:
            raise ValueError(f"{text!r}: say the unit, {number}BTC or {number}sat")
        unit = "sat"
    if unit not in _UNITS:
        raise ValueError(f"{text!r}: unknown unit {match.group(2)!r} (BTC or sat)")
    try:
        sat = Decimal(number) * _UNITS[unit]
    except InvalidOperation:
        raise ValueError(f"{text!r} is not an amount: write it as 0.01BTC or 1000000sat") from None
    if sat != sat.to_integral_value():
        raise ValueError(f"{text!r} is not a whole number of satoshis (BTC has 8 decimals)")
    return int(sat)
