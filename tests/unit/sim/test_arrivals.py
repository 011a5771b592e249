"""Demand draws: each pattern's arrivals, hold times, Zipf choice, and their determinism."""

import random
import statistics

import pytest

from fma.adapters.sim.arrivals import ZipfChooser, arrival_times, draw_hold_s
from fma.adapters.sim.runner import run_scenario
from fma.api.demand import Demand, HoldTime
from fma.api.scenario import Scenario

DAY_S = 86400.0


def demand(**fields: object) -> Demand:
    return Demand.model_validate({"model": "m", **fields})


def times(d: Demand, end_s: float, seed: int = 1) -> list[float]:
    return list(arrival_times(d, end_s, random.Random(seed)))


def test_poisson_rate_and_window() -> None:
    got = times(demand(rate_per_h=100, start="1h", stop="21h"), DAY_S)
    assert all(3600 <= t < 21 * 3600 for t in got)
    assert got == sorted(got)
    assert 1800 <= len(got) <= 2200  # 2,000 expected over 20 h


def test_steps_follow_the_rate_and_stop_at_zero() -> None:
    steps = [
        {"at": "1h", "rate_per_h": 200},
        {"at": "2h", "rate_per_h": 0},
        {"at": "3h", "rate_per_h": 50},
    ]
    got = times(demand(pattern="steps", steps=steps), 4 * 3600)
    assert not [t for t in got if t < 3600 or 7200 <= t < 3 * 3600]
    first, last = [t for t in got if t < 7200], [t for t in got if t >= 3 * 3600]
    assert len(first) > 2 * len(last)


def test_bursty_arrives_only_in_bursts() -> None:
    got = times(demand(pattern="bursty", rate_per_h=120, on_for="10m", off_for="50m"), 6 * 3600)
    assert got and all(t % 3600 < 600 for t in got)


def test_diurnal_peaks_at_peak_at() -> None:
    d = demand(pattern="diurnal", peak_rate_per_h=120, trough_rate_per_h=6, peak_at="14h")
    got = times(d, DAY_S)
    near_peak = [t for t in got if 12 * 3600 <= t < 16 * 3600]
    near_trough = [t for t in got if t < 4 * 3600]
    assert len(near_peak) > 5 * len(near_trough)


def test_same_seed_same_arrivals_other_seed_others() -> None:
    d = demand(pattern="diurnal", peak_rate_per_h=60, trough_rate_per_h=10)
    assert times(d, DAY_S, seed=3) == times(d, DAY_S, seed=3)
    assert times(d, DAY_S, seed=3) != times(d, DAY_S, seed=4)


@pytest.mark.parametrize(
    ("hold", "cv"),
    [
        ({"dist": "exponential", "mean": 600}, 1.0),
        ({"dist": "lognormal", "mean": 600, "cv": 2.0}, 2.0),
        ({"dist": "uniform", "mean": 600, "cv": 0.5}, 0.5),
        ({"dist": "pareto", "mean": 600, "cv": 1.5}, 1.5),
    ],
    ids=["exponential", "lognormal", "uniform", "pareto"],
)
def test_hold_distributions_have_their_mean(hold: dict[str, object], cv: float) -> None:
    spec = HoldTime.model_validate(hold)
    rng = random.Random(5)
    draws = [draw_hold_s(spec, rng) for _ in range(20_000)]
    assert min(draws) >= 0
    assert statistics.fmean(draws) == pytest.approx(600, rel=0.1 * max(1.0, cv))


def test_fixed_hold_and_cap() -> None:
    rng = random.Random(1)
    assert draw_hold_s(HoldTime(dist="fixed", mean=90), rng) == 90
    capped = HoldTime(dist="pareto", mean=600, cv=3, max=900)
    assert max(draw_hold_s(capped, rng) for _ in range(2000)) == 900


def test_zipf_popularity() -> None:
    chooser = ZipfChooser([f"m{k}" for k in range(10)], 1.0)
    shares = chooser.popularity()
    assert shares == sorted(shares, reverse=True) and sum(shares) == pytest.approx(1)
    assert shares[0] / shares[1] == pytest.approx(2)
    rng = random.Random(2)
    picks = [chooser.choose(rng) for _ in range(20_000)]
    assert picks.count("m0") / len(picks) == pytest.approx(shares[0], abs=0.02)
    uniform = ZipfChooser(["a", "b"], 0.0).popularity()
    assert uniform == pytest.approx([0.5, 0.5])


def test_trace_demand_sets_the_replica_count() -> None:
    scenario = Scenario.model_validate(
        {
            "name": "trace",
            "duration": "1h",
            "cluster": {"node_pools": [{"name": "n", "count": 1, "gpus_per_node": 8}]},
            "models": [{"name": "m", "weights_gib": 4}],
            "policy": {"actuation": "direct-sleep"},
            "demand": [{"model": "m", "pattern": "trace", "points": [[0, 2], [600, 5], [1800, 1]]}],
        }
    )
    events = run_scenario(scenario, 1).trace.events
    created = [e["t"] for e in events if e["kind"] == "requester_created"]
    scaled = [e["t"] for e in events if e.get("reason") == "scaled down"]
    assert created == [0.0, 0.0, 600.0, 600.0, 600.0]
    assert scaled == [1800.0] * 4
