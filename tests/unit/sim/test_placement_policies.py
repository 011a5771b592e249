"""Sleeper-aware placement in the simulator: what each policy is worth, and default unchanged."""

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from fma.adapters.sim import scheduling
from fma.adapters.sim.runner import run_scenario
from fma.api.scenario import Scenario
from fma.bench.compare import variants
from fma.bench.digest import Task
from fma.bench.metrics import metric
from fma.core.placement import PLACEMENTS
from fma.runs import simulate

REPO = Path(__file__).parents[3]

# One model on one 8-GPU node, asked for by one replica for ten minutes in every twenty: the
# replica's sleeper is always there when it comes back, on GPUs nobody else holds.
RETURNING: dict[str, Any] = {
    "name": "returning",
    "duration": "2h",
    "cluster": {"node_pools": [{"name": "n", "count": 1, "gpus_per_node": 8}]},
    "models": [{"name": "m", "weights_gib": 16}],
    "launchers": {"per_node": 1},
    "demand": [
        {
            "model": "m",
            "pattern": "trace",
            "points": [[t, 1 - (t // 600) % 2] for t in range(0, 6600, 600)],
        }
    ],
}


def hot_and_actuations(raw: dict[str, Any], placement: str, seed: int) -> tuple[float, float]:
    raw = {**raw, "policy": {**raw.get("policy", {}), "placement": placement}}
    summary = simulate(Task(Scenario.model_validate(raw), seed, placement)).summary
    return metric(summary, "hot_hit_rate"), metric(summary, "actuations")


def test_gpu_aware_wakes_the_sleeper_every_time_the_default_does_by_chance() -> None:
    for seed in (1, 2, 3):
        hot, actuations = hot_and_actuations(RETURNING, "gpu-aware", seed)
        assert actuations == 6
        assert hot == pytest.approx(5 / 6, abs=1e-3)  # every return but the first start
        default_hot, _ = hot_and_actuations(RETURNING, "default", seed)
        assert default_hot < hot


def test_the_oracle_bounds_the_other_placements_on_the_long_tail() -> None:
    """The oracle takes every hit there is at each decision; over a run that is not quite a
    bound (a miss leaves a second sleeper of its model behind, which a later Pod may hit), so
    it may trail the best by a few hits in a thousand, never by more."""
    raw = yaml.safe_load((REPO / "sim/scenarios/longtail.yaml").read_text())
    raw["duration"] = "3h"
    for seed in (7, 8, 9):
        hot = {p: hot_and_actuations(raw, p, seed)[0] for p in PLACEMENTS}
        assert hot["default"] < hot["node-affinity"] < hot["gpu-aware"]
        assert hot["oracle"] >= hot["gpu-aware"] - 0.005


def test_an_explicit_default_is_the_run_without_placement_and_never_asks_the_core(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = yaml.safe_load((REPO / "sim/scenarios/longtail.yaml").read_text())
    raw["duration"] = "1h"
    bare = tmp_path / "bare.jsonl"
    run_scenario(Scenario.model_validate(raw)).trace.write_jsonl(bare)

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the default placement consulted the placement decision")

    monkeypatch.setattr(scheduling, "choose", refuse)
    explicit = tmp_path / "explicit.jsonl"
    raw["policy"]["placement"] = "default"
    run_scenario(Scenario.model_validate(raw)).trace.write_jsonl(explicit)
    assert explicit.read_bytes() == bare.read_bytes()


def test_same_placement_and_seed_give_identical_bytes(tmp_path: Path) -> None:
    raw = yaml.safe_load((REPO / "sim/scenarios/longtail.yaml").read_text())
    raw["duration"] = "1h"
    raw["policy"]["placement"] = "oracle"
    scenario = Scenario.model_validate(raw)
    first, second = tmp_path / "1.jsonl", tmp_path / "2.jsonl"
    run_scenario(scenario, 3).trace.write_jsonl(first)
    run_scenario(scenario, 3).trace.write_jsonl(second)
    assert first.read_bytes() == second.read_bytes()


def test_an_unknown_placement_is_refused_naming_the_field() -> None:
    raw = {**RETURNING, "policy": {"placement": "nearest"}}
    with pytest.raises(ValidationError) as error:
        Scenario.model_validate(raw)
    assert error.value.errors()[0]["loc"] == ("policy", "placement")


def test_compare_columns_per_placement_label_it_and_run_cold_once() -> None:
    columns = variants(["fma", "cold"], [], "lru", ["default", "gpu-aware"])
    assert [(v.label, v.placement) for v in columns] == [
        ("fma / default", "default"),
        ("fma / gpu-aware", "gpu-aware"),
        ("cold", "default"),
    ]
    scenario = Scenario.model_validate(RETURNING)
    assert columns[1].apply(scenario).policy.placement == "gpu-aware"
    assert [v.placement for v in variants(["fma"], [], "lru")] == [None]
