"""Daily, weekly (ISO, Monday first) and monthly periods in UTC."""

from __future__ import annotations

import datetime as dt
from typing import Literal

Period = Literal["daily", "weekly", "monthly"]
PERIODS: tuple[str, ...] = ("daily", "weekly", "monthly")


def period_start(day: dt.date, period: str) -> dt.date:
    if period == "daily":
        return day
    if period == "weekly":
        return day - dt.timedelta(days=day.weekday())
    if period == "monthly":
        return day.replace(day=1)
    raise ValueError(f"unknown period {period!r}: expected one of {', '.join(PERIODS)}")


def period_end(start: dt.date, period: str) -> dt.date:
    """Exclusive end."""
    if period == "daily":
        return start + dt.timedelta(days=1)
    if period == "weekly":
        return start + dt.timedelta(days=7)
    if period == "monthly":
        return (start.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    raise ValueError(f"unknown period {period!r}: expected one of {', '.join(PERIODS)}")


def periods_covering(first: dt.date, last: dt.date, period: str) -> list[tuple[dt.date, dt.date]]:
    """Every whole period that overlaps [first, last] (inclusive dates): (start, exclusive end)."""
    if last < first:
        raise ValueError(f"end {last} is before start {first}")
    out = []
    start = period_start(first, period)
    while start <= last:
        end = period_end(start, period)
        out.append((start, end))
        start = end
    return out


def days_in(start: dt.date, end: dt.date) -> list[dt.date]:
    return [start + dt.timedelta(days=i) for i in range((end - start).days)]


def to_epoch(day: dt.date) -> float:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp()
