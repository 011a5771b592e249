"""Demand patterns, Zipf mixes and hold times in scenario files: what loads, and what errors."""

from pathlib import Path

import pytest

from fma.api.durations import parse_duration_s
from fma.api.loading import InputError, load_scenario
from fma.api.scenario import Scenario

HEAD = (
    "name: x\nduration: 2h\ncluster: {node_pools: [{name: a, count: 1}]}\n"
    "models: [{name: m, weights_gib: 1}, {name: ft, weights_gib: 2, copies: 12}]\n"
)


def load(tmp_path: Path, demand: str) -> Scenario:
    path = tmp_path / "s.yaml"
    path.write_text(HEAD + "demand:\n" + demand)
    return load_scenario(path)


def error_of(tmp_path: Path, demand: str) -> str:
    with pytest.raises(InputError) as error:
        load(tmp_path, demand)
    message = str(error.value)
    assert "\n" not in message
    return message


def test_copies_expand_into_named_models(tmp_path: Path) -> None:
    scenario = load(tmp_path, "  - {model: m}\n")
    names = [m.name for m in scenario.models]
    assert names == ["m", *[f"ft-{k:02d}" for k in range(12)]]
    assert scenario.model("ft-07").weights_gib == 2


def test_zipf_mix_expands_globs_in_listed_order(tmp_path: Path) -> None:
    scenario = load(tmp_path, "  - {models: [ft-1*, m, ft-*], zipf_s: 1.2, rate_per_h: 60}\n")
    (demand,) = scenario.demand
    assert demand.models == [
        "ft-10",
        "ft-11",
        "m",
        *[f"ft-{k:02d}" for k in range(10)],
    ]
    assert demand.zipf_exponent() == 1.2


def test_hold_shorthand_and_distribution(tmp_path: Path) -> None:
    scenario = load(
        tmp_path,
        "  - {model: m, hold: 5m}\n  - {model: m, hold: {dist: lognormal, mean: 10m, cv: 2}}\n",
    )
    short, full = (d.hold_time() for d in scenario.demand)
    assert (short.dist, short.mean, short.spread()) == ("exponential", 300.0, 1.0)
    assert (full.dist, full.mean, full.spread()) == ("lognormal", 600.0, 2.0)


def test_trace_file_is_read_relative_to_the_scenario(tmp_path: Path) -> None:
    (tmp_path / "traces").mkdir()
    (tmp_path / "traces" / "t.csv").write_text("t_s,replicas\n0,1\n# a comment\n600,3\n")
    scenario = load(tmp_path, "  - {model: m, pattern: trace, file: traces/t.csv}\n")
    points = scenario.demand[0].points
    assert points is not None
    assert [(p.t_s, p.replicas) for p in points] == [(0.0, 1), (600.0, 3)]


@pytest.mark.parametrize(
    ("demand", "expected"),
    [
        (
            "  - {model: m, pattern: diurnal}\n",
            "demand[0].peak_rate_per_h: pattern 'diurnal' needs it",
        ),
        (
            "  - {model: m, peak_rate_per_h: 3}\n",
            "demand[0].peak_rate_per_h: only used by pattern 'diurnal', not 'poisson'",
        ),
        (
            "  - {model: m, pattern: bursty, on_for: 5m}\n",
            "demand[0].off_for: pattern 'bursty' needs it",
        ),
        ("  - {model: m, pattern: trace}\n", "demand[0]: pattern 'trace' needs 'file'"),
        ("  - {model: m, pattern: trace, points: [[0, 1]], hold: 5m}\n", "demand[0].hold: only"),
        ("  - {model: m, models: [m]}\n", "demand[0].models: give either 'model'"),
        ("  - {rate_per_h: 3}\n", "demand[0].models: give 'model' (one model) or 'models'"),
        ("  - {models: [nope-*]}\n", "demand[0].models[0]: no model matches 'nope-*'"),
        ("  - {model: m, zipf_s: 1}\n", "demand[0].zipf_s: only used with 'models'"),
        ("  - {model: m, hold: {dist: uniform, mean: 5m, cv: 0.9}}\n", "demand[0].hold.cv:"),
        ("  - {model: m, hold: {dist: weibull, mean: 5m}}\n", "demand[0].hold.dist:"),
        (
            "  - {model: m, pattern: steps,\n"
            "     steps: [{at: 1h, rate_per_h: 1}, {at: 0, rate_per_h: 2}]}\n",
            "demand[0].steps: 'at' times must increase",
        ),
        ("  - {model: m, pattern: trace, file: absent.csv}\n", "demand[0].file: cannot read"),
        ("  - {model: m, start: 1h, stop: 30m}\n", "'stop' must be after 'start'"),
    ],
    ids=[
        "diurnal-needs-peak",
        "peak-only-diurnal",
        "bursty-needs-off",
        "trace-needs-points",
        "trace-has-no-hold",
        "model-and-models",
        "neither-model",
        "unmatched-glob",
        "zipf-without-mix",
        "uniform-cv-too-big",
        "unknown-dist",
        "steps-out-of-order",
        "missing-trace-file",
        "stop-before-start",
    ],
)
def test_bad_demand_names_the_field(tmp_path: Path, demand: str, expected: str) -> None:
    assert expected in error_of(tmp_path, demand)


def test_bad_trace_row_names_the_line(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("t_s,replicas\n0,1\n60,2.5\n")
    message = error_of(tmp_path, "  - {model: m, pattern: trace, file: t.csv}\n")
    assert "demand[0].file:" in message and "line 3: replicas must be a whole number" in message


@pytest.mark.parametrize(
    ("text", "seconds"), [("1h30m", 5400.0), ("7h15m", 26100.0), ("2d 6h", 194400.0)]
)
def test_compound_durations(text: str, seconds: float) -> None:
    assert parse_duration_s(text) == seconds
