"""The harness has teeth: a deliberately broken decision must be caught by the checkers."""

import pytest

from fma.adapters.sim.runner import run_scenario
from fma.api.scenario import Scenario
from fma.bench.invariants import check_all
from fma.core import room

SLOW_SLEEP = Scenario.model_validate(
    {
        "name": "slow-sleep",
        "duration": "2h",
        "cluster": {
            "node_pools": [
                {"name": "n", "count": 1, "gpus_per_node": 1, "gpu_memory_gib": 80, "d2h_gbps": 1}
            ]
        },
        "models": [{"name": "a", "weights_gib": 30}, {"name": "b", "weights_gib": 30}],
        "policy": {"actuation": "direct-sleep"},
        "demand": [
            {"model": "a", "rate_per_h": 30, "hold": 60},
            {"model": "b", "rate_per_h": 30, "hold": 60},
        ],
    }
)


def test_correct_core_keeps_gpus_exclusive() -> None:
    assert check_all(run_scenario(SLOW_SLEEP).trace.events) == []


def test_core_that_ignores_a_still_awake_instance_is_caught(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Broken: placement no longer waits for the previous instance to finish going to sleep."""
    monkeypatch.setattr(room, "gpus_taken", lambda *args, **kwargs: False)
    violations = check_all(run_scenario(SLOW_SLEEP).trace.events)
    assert {v["invariant"] for v in violations} == {"gpu_exclusive_awake"}


def test_checker_flags_a_doubly_held_gpu() -> None:
    events = [
        {"t": 0.0, "kind": "requester_scheduled", "requester": "r1", "gpus": ["g"]},
        {"t": 1.0, "kind": "requester_scheduled", "requester": "r2", "gpus": ["g"]},
    ]
    assert [v["invariant"] for v in check_all(events)] == ["gpu_single_requester"]
