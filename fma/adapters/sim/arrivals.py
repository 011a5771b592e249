"""Random draws of the demand: arrival times, hold times and which model of a mix is wanted.

Pure functions of a :class:`random.Random` passed in, so a run is reproducible from its seed.
The workload gives each concern of each demand entry its own generator (arrivals, holds, model
choice): changing the hold distribution, say, leaves the arrival times as they were, and two
policies compared on one seed see the same arrivals.
"""

import bisect
import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from fma.api.demand import Demand, HoldTime


@dataclass(frozen=True, slots=True)
class Segment:
    """Arrivals at ``rate_per_s`` during [start_s, end_s)."""

    start_s: float
    end_s: float
    rate_per_s: float


def rate_segments(demand: Demand, end_s: float) -> list[Segment]:
    """The piecewise-constant rate of ``poisson``, ``bursty`` and ``steps`` demand, clipped to
    the demand's [start, stop) window and to [0, end_s)."""
    lo = demand.start
    hi = min(end_s, demand.stop if demand.stop is not None else end_s)
    if hi <= lo:
        return []
    pieces: list[Segment] = []
    if demand.pattern == "poisson":
        pieces = [Segment(lo, hi, demand.rate() / 3600.0)]
    elif demand.pattern == "steps":
        assert demand.steps is not None
        bounds = [s.at for s in demand.steps[1:]] + [math.inf]
        pieces = [
            Segment(s.at, b, s.rate_per_h / 3600.0)
            for s, b in zip(demand.steps, bounds, strict=True)
        ]
    elif demand.pattern == "bursty":
        assert demand.on_for is not None and demand.off_for is not None
        off_rate = (demand.off_rate_per_h or 0.0) / 3600.0
        t = lo
        while t < hi:
            pieces.append(Segment(t, t + demand.on_for, demand.rate() / 3600.0))
            pieces.append(Segment(t + demand.on_for, t + demand.on_for + demand.off_for, off_rate))
            t += demand.on_for + demand.off_for
    else:
        raise ValueError(f"pattern {demand.pattern!r} has no piecewise-constant rate")
    clipped = [Segment(max(p.start_s, lo), min(p.end_s, hi), p.rate_per_s) for p in pieces]
    return [p for p in clipped if p.end_s > p.start_s]


def diurnal_rate_per_s(demand: Demand, t_s: float) -> float:
    """A cosine wave: ``peak_rate_per_h`` at ``peak_at`` in each period, the trough opposite."""
    assert demand.peak_rate_per_h is not None and demand.trough_rate_per_h is not None
    phase = 2.0 * math.pi * (t_s - demand.diurnal_peak_s()) / demand.diurnal_period_s()
    wave = (1.0 + math.cos(phase)) / 2.0
    per_h = demand.trough_rate_per_h + (demand.peak_rate_per_h - demand.trough_rate_per_h) * wave
    return per_h / 3600.0


def arrival_times(demand: Demand, end_s: float, rng: random.Random) -> Iterator[float]:
    """Arrival times of a rate pattern within [start, stop) and before ``end_s``, in order.

    Piecewise-constant rates draw a homogeneous Poisson process per piece (exact, because the
    process is memoryless); ``diurnal`` thins a process at the peak rate (Lewis and Shedler).
    """
    if demand.pattern == "diurnal":
        yield from _thinned(demand, end_s, rng)
        return
    for segment in rate_segments(demand, end_s):
        if segment.rate_per_s <= 0:
            continue
        t = segment.start_s
        while True:
            t += rng.expovariate(segment.rate_per_s)
            if t >= segment.end_s:
                break
            yield t


def _thinned(demand: Demand, end_s: float, rng: random.Random) -> Iterator[float]:
    assert demand.peak_rate_per_h is not None and demand.trough_rate_per_h is not None
    top = max(demand.peak_rate_per_h, demand.trough_rate_per_h) / 3600.0
    hi = min(end_s, demand.stop if demand.stop is not None else end_s)
    if top <= 0:
        return
    t = demand.start
    while True:
        t += rng.expovariate(top)
        if t >= hi:
            return
        if rng.random() * top < diurnal_rate_per_s(demand, t):
            yield t


def draw_hold_s(hold: HoldTime, rng: random.Random) -> float:
    """One hold time in seconds from ``hold`` (mean and coefficient of variation), capped at max."""
    mean, cv = hold.mean, hold.spread()
    if hold.dist == "fixed" or cv == 0:
        value = mean
    elif hold.dist == "exponential":
        value = rng.expovariate(1.0 / mean)
    elif hold.dist == "lognormal":
        sigma2 = math.log1p(cv * cv)
        value = rng.lognormvariate(math.log(mean) - sigma2 / 2.0, math.sqrt(sigma2))
    elif hold.dist == "uniform":
        half = mean * cv * math.sqrt(3.0)
        value = rng.uniform(mean - half, mean + half)
    else:  # pareto: the shape alpha gives the cv, the scale then gives the mean
        alpha = 1.0 + math.sqrt(1.0 + 1.0 / (cv * cv))
        value = mean * (alpha - 1.0) / alpha * rng.paretovariate(alpha)
    return min(value, hold.max) if hold.max is not None else value


class ZipfChooser:
    """Picks a model of a mix: the k-th (from 1) with probability proportional to 1/k^s."""

    def __init__(self, names: Sequence[str], s: float) -> None:
        self.names = list(names)
        cumulative, total = [], 0.0
        for k in range(1, len(self.names) + 1):
            total += 1.0 / k**s
            cumulative.append(total)
        self._cumulative = cumulative

    def popularity(self) -> list[float]:
        """Each model's share of arrivals, in order."""
        total = self._cumulative[-1]
        previous = [0.0, *self._cumulative[:-1]]
        return [(c - p) / total for c, p in zip(self._cumulative, previous, strict=True)]

    def choose(self, rng: random.Random) -> str:
        if len(self.names) == 1:
            return self.names[0]
        x = rng.random() * self._cumulative[-1]
        return self.names[min(bisect.bisect_right(self._cumulative, x), len(self.names) - 1)]
