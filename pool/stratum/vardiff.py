"""Per-connection variable difficulty (sans-IO: every call is given `now`).

The estimator is difficulty-weighted shares per second over the window since the last change; the
optimum is that rate times the target interval. A band of hysteresis keeps it from flapping, a
floor comes from suggest_difficulty / minimum-difficulty / the port, and the result only takes
effect with the next job the connection is sent (the session handles that).
"""

from __future__ import annotations

import math

from pool.config.stratum import PortConfig

# No change while optimal/current stays inside this band (Poisson noise over a window of a few
# shares is large; ckpool's 0.15..0.4 shares/s band around 0.3 is about the same width).
BAND_LOW = 0.5
BAND_HIGH = 2.0
MIN_SHARES = 6               # shares needed in a window before it is trusted (else it widens)
STEP_DAMPING_RANGE = 4.0     # within 4x of the target, move half way (no overshoot from noise)


def round_difficulty(value: float, integer: bool) -> float:
    """Integers for ASIC ports (>= 1); below 1, three significant digits."""
    if value >= 1 and integer:
        return float(max(1, round(value)))
    if value <= 0:
        return value
    digits = 2 - math.floor(math.log10(value))
    return round(value, digits) if digits > 0 else float(round(value))


class VarDiff:
    __slots__ = ("port", "shares", "since", "weight")

    def __init__(self, port: PortConfig, now: float) -> None:
        self.port = port
        self.since = now
        self.shares = 0
        self.weight = 0.0

    def reset(self, now: float) -> None:
        self.since = now
        self.shares = 0
        self.weight = 0.0

    def on_share(self, difficulty: float, current: float, floor: float, now: float) -> float | None:
        """Record one accepted share (credited at `difficulty`); a new difficulty or None."""
        self.shares += 1
        self.weight += difficulty
        elapsed = now - self.since
        port = self.port
        if elapsed < port.retarget_seconds:
            # Early evaluation only when shares arrive several times faster than intended.
            if self.shares < port.retarget_fast_shares:
                return None
            if elapsed * 4 >= port.target_share_seconds * self.shares:
                return None
        elif self.shares < MIN_SHARES and elapsed < 4 * port.retarget_seconds:
            return None     # too few shares for an estimate: widen the window
        return self._evaluate(current, floor, max(elapsed, 0.001), now)

    def on_idle(self, current: float, floor: float, now: float) -> float | None:
        """Called periodically: lower the difficulty of a connection that stopped finding shares."""
        elapsed = now - self.since
        if self.shares or elapsed < max(self.port.retarget_seconds, 3 * self.port.target_share_seconds):
            return None
        return self._evaluate(current, floor, elapsed, now)

    def _evaluate(self, current: float, floor: float, elapsed: float, now: float) -> float | None:
        port = self.port
        floor = min(floor, port.max_difficulty)     # a floor never lifts past the port's maximum
        # With no share at all, one share in the window is an upper bound on the rate.
        weight = self.weight if self.shares else current
        optimal = weight / elapsed * port.target_share_seconds
        self.reset(now)
        ratio = optimal / current
        if BAND_LOW <= ratio <= BAND_HIGH:
            return None
        if 1 / STEP_DAMPING_RANGE <= ratio <= STEP_DAMPING_RANGE:
            optimal = current * math.sqrt(ratio)    # near the target: half a step (in log terms)
        new = max(optimal, current / port.max_step_down)
        new = min(max(new, floor, port.min_difficulty), port.max_difficulty)
        new = round_difficulty(new, port.integer_difficulty)
        if new < max(floor, port.min_difficulty):   # rounding must not go under the floor
            new = max(floor, port.min_difficulty)
        return None if new == current else new


def client_floor(value: float, port: PortConfig) -> float:
    """A difficulty a client asked for (finite: the caller refused the rest), inside the port's range."""
    return min(max(value, port.min_difficulty), port.max_difficulty)


def clamp_difficulty(value: float, port: PortConfig, floor: float = 0.0) -> float:
    value = min(max(value, floor, port.min_difficulty), port.max_difficulty)
    rounded = round_difficulty(value, port.integer_difficulty)
    return rounded if rounded >= port.min_difficulty else port.min_difficulty
