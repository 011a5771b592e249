"""(scenario, seed) gives the same ``events.jsonl`` byte for byte — faults included.

One seed derives every random choice; nothing depends on the wall clock, on global random
state or on Python's per-process hash randomisation (checked across processes).
"""

import os
import subprocess
import sys
from pathlib import Path

import yaml

from fma.adapters.sim.runner import run_scenario
from fma.api.scenario import Scenario

REPO = Path(__file__).parents[3]

FAULTY = {
    "name": "determinism",
    "seed": 5,
    "duration": "2h",
    "cluster": {
        "node_pools": [
            {"name": "a", "count": 2, "gpus_per_node": 4, "host_memory_gib": 128},
            {"name": "b", "count": 1, "gpus_per_node": 2, "gpu_memory_gib": 40},
        ]
    },
    "models": [
        {"name": "m1", "weights_gib": 16},
        {"name": "m2", "weights_gib": 30, "gpus": 2},
        {"name": "m3", "weights_gib": 8},
    ],
    "policy": {"actuation": "fma", "eviction": "cost"},
    "launchers": {"max_instances": 3, "per_node": 1},
    "demand": [
        {"model": "m1", "rate_per_h": 30, "hold": "5m"},
        {"model": "m2", "rate_per_h": 10, "hold": "10m"},
        {"model": "m3", "rate_per_h": 20, "hold": "2m"},
    ],
    "faults": [
        {"kind": "node_loss", "rate_per_h": 1, "duration": "15m"},
        {"kind": "node_cordon", "rate_per_h": 1, "duration": "5m"},
        {"kind": "instance_crash", "rate_per_h": 4},
        {"kind": "launcher_crash", "rate_per_h": 2},
        {"kind": "controller_restart", "rate_per_h": 2},
        {"kind": "wake_failure", "probability": 0.2, "mode": "timeout"},
        {"kind": "api_conflict", "probability": 0.1},
        {"kind": "api_error", "probability": 0.05},
        {"kind": "watch_delay", "probability": 0.3, "delay": 3},
        {"kind": "watch_drop", "probability": 0.05, "until": "1h"},
    ],
}


def jsonl(scenario: Scenario, seed: int | None, tmp: Path) -> bytes:
    out = tmp / f"events-{seed}.jsonl"
    run_scenario(scenario, seed).trace.write_jsonl(out)
    return out.read_bytes()


def test_same_scenario_and_seed_give_identical_bytes(tmp_path: Path) -> None:
    scenario = Scenario.model_validate(FAULTY)
    first = jsonl(scenario, None, tmp_path)
    assert first == jsonl(scenario, None, tmp_path)
    assert b'"kind":"fault"' in first


def test_another_seed_gives_another_run(tmp_path: Path) -> None:
    scenario = Scenario.model_validate(FAULTY)
    assert jsonl(scenario, 5, tmp_path) != jsonl(scenario, 6, tmp_path)


def test_identical_bytes_across_processes_with_different_hash_seeds(tmp_path: Path) -> None:
    path = tmp_path / "faulty.yaml"
    path.write_text(yaml.safe_dump(FAULTY), encoding="utf-8")
    outputs = []
    for hash_seed in ("1", "2"):
        out = tmp_path / f"out-{hash_seed}"
        env = {**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": str(REPO)}
        subprocess.run(
            [sys.executable, "-m", "fma", "sim", "run", str(path), "--out", str(out)],
            check=True,
            capture_output=True,
            cwd=REPO,
            env=env,
        )
        outputs.append((out / "events.jsonl").read_bytes())
    assert outputs[0] == outputs[1]
    assert outputs[0] == jsonl(Scenario.model_validate(FAULTY), None, tmp_path)
