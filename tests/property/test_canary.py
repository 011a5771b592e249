"""The harness has teeth, and the GPU hand-over is guarded twice.

A GPU passes from one requester to the next only when its previous engine has let go of it,
and two mechanisms see to that: the requester's finalizer is released only once nothing holds
its GPUs (so the scheduler does not give them away early), and placement waits while another
instance still holds them (``room.gpus_taken``). On a scenario whose sleeps are slow, breaking
either one alone — even with the old "unbind while the sleep is under way" semantics — keeps
the GPUs exclusive; breaking both is caught by ``gpu_exclusive_awake``. The search-based
canaries (the state machine must find each mutant) are in ``test_mutants.py``.
"""

import contextlib

import pytest

from fma.adapters.sim.runner import run_scenario
from fma.api.scenario import Scenario
from fma.bench.invariants import check_all
from tests.property.mutants import Mutant

SLOW_SLEEP = Scenario.model_validate(
    {
        "name": "slow-sleep",
        "duration": "2h",
        "cluster": {
            "node_pools": [
                {"name": "n", "count": 1, "gpus_per_node": 1, "gpu_memory_gib": 80, "d2h_gbps": 1}
            ]
        },
        # Engines that claim under half of the GPU: memory alone would let two share it, so
        # only the two guards keep a GPU to one engine at a time.
        "models": [
            {"name": "a", "weights_gib": 30, "gpu_memory_utilization": 0.4},
            {"name": "b", "weights_gib": 30, "gpu_memory_utilization": 0.4},
        ],
        "policy": {"actuation": "direct-sleep"},
        "demand": [
            {"model": "a", "rate_per_h": 30, "hold": 60},
            {"model": "b", "rate_per_h": 30, "hold": 60},
        ],
    }
)

UNBIND_MID_SLEEP = Mutant(
    "the binding goes as soon as the sleep starts (the old semantics)",
    "fma.core.retire",
    "retire",
    "return Retirement((*(evict(v, snapshot) for v in victims), sleep), settled=False)",
    "return Retirement((*(evict(v, snapshot) for v in victims), sleep), settled=True)",
    "gpu_exclusive_awake",
)
FINALIZER_AT_ONCE = Mutant(
    "the requester's finalizer goes without looking at its GPUs",
    "fma.core.dualpods",
    "_release_finalizer",
    "if requester.gpu_uuids and holders_of(requester.gpu_uuids, snapshot):",
    "if False:",
    "gpu_exclusive_awake",
)
NO_WAIT_FOR_GPUS = Mutant(
    "placement does not wait for an instance still on the GPUs",
    "fma.core.room",
    "gpus_taken",
    "                return True",
    "                return False",
    "gpu_exclusive_awake",
)


def breaches(*mutants: Mutant) -> set[str]:
    with contextlib.ExitStack() as stack:
        for mutant in mutants:
            stack.enter_context(mutant.applied())
        return {v["invariant"] for v in check_all(run_scenario(SLOW_SLEEP).trace.events)}


def test_correct_core_keeps_gpus_exclusive() -> None:
    assert breaches() == set()


@pytest.mark.parametrize(
    "mutants",
    [(UNBIND_MID_SLEEP, FINALIZER_AT_ONCE), (NO_WAIT_FOR_GPUS,)],
    ids=["finalizer-broken", "placement-broken"],
)
def test_either_guard_alone_keeps_the_gpus_exclusive(mutants: tuple[Mutant, ...]) -> None:
    assert breaches(*mutants) == set()


def test_breaking_both_guards_is_caught() -> None:
    found = breaches(UNBIND_MID_SLEEP, FINALIZER_AT_ONCE, NO_WAIT_FOR_GPUS)
    assert "gpu_exclusive_awake" in found


def test_checker_flags_a_doubly_held_gpu() -> None:
    events = [
        {"t": 0.0, "kind": "requester_scheduled", "requester": "r1", "gpus": ["g"]},
        {"t": 1.0, "kind": "requester_scheduled", "requester": "r2", "gpus": ["g"]},
    ]
    assert [v["invariant"] for v in check_all(events)] == ["gpu_single_requester"]
