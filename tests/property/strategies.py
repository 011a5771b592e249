"""Hypothesis strategies for small, valid scenarios, with or without faults."""

from typing import Any

from hypothesis import strategies as st

from fma.api.scenario import Scenario

ACTUATIONS = ["fma", "direct-sleep", "cold"]


@st.composite
def _cluster_and_models(draw: st.DrawFn) -> dict[str, Any]:
    gpus_per_node = draw(st.integers(1, 4))
    gpu_memory_gib = draw(st.sampled_from([24, 40, 80]))
    models = [
        {
            "name": f"m{i}",
            "weights_gib": draw(st.floats(1, gpu_memory_gib - 1)),
            "gpus": draw(st.integers(1, gpus_per_node)),
            "engine_init_s": draw(st.floats(1, 60)),
            "port": draw(st.sampled_from([8000, 8001])),
        }
        for i in range(draw(st.integers(1, 3)))
    ]
    return {
        "cluster": {
            "node_pools": [
                {
                    "name": "pool",
                    "count": draw(st.integers(1, 3)),
                    "gpus_per_node": gpus_per_node,
                    "gpu_memory_gib": gpu_memory_gib,
                    "host_memory_gib": draw(st.sampled_from([32, 64, 256, 1024])),
                    "d2h_gbps": draw(st.sampled_from([1, 25])),
                }
            ]
        },
        "models": models,
    }


def _policy(draw: st.DrawFn, actuation: str | None) -> dict[str, Any]:
    return {
        "actuation": actuation or draw(st.sampled_from(ACTUATIONS)),
        "eviction": draw(st.sampled_from(["lru", "oldest", "cost"])),
        "ready_timeout": draw(st.sampled_from([120, 600])),
    }


@st.composite
def scenarios(draw: st.DrawFn, *, actuation: str | None = None, faults: bool = False) -> Scenario:
    """A small cluster, a few models that fit one GPU's memory, Poisson demand; with
    ``faults``, a few faults of every kind at generated rates and probabilities."""
    base = draw(_cluster_and_models())
    data: dict[str, Any] = {
        "name": "generated",
        "seed": draw(st.integers(0, 2**32 - 1)),
        "duration": draw(st.sampled_from([1800, 3600, 7200])),
        **base,
        "launchers": {
            "max_instances": draw(st.integers(1, 3)),
            "per_node": draw(st.integers(0, 1)),
        },
        "policy": _policy(draw, actuation),
        "demand": [
            {
                "model": m["name"],
                "rate_per_h": draw(st.floats(1, 60)),
                "hold": draw(st.sampled_from([60, 600, 1800])),
            }
            for m in base["models"]
        ],
        "faults": draw(fault_lists()) if faults else [],
    }
    return Scenario.model_validate(data)


OCCURRENCES = ["node_loss", "node_cordon", "instance_crash", "launcher_crash", "controller_restart"]


@st.composite
def fault_lists(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Up to six faults; occurrences at rates, per-operation faults with probabilities."""
    faults: list[dict[str, Any]] = []
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from([*OCCURRENCES, *PER_OPERATION]))
        fault: dict[str, Any] = {"kind": kind}
        if kind in OCCURRENCES:
            fault["rate_per_h"] = draw(st.sampled_from([0.5, 2, 6]))
            if kind in ("node_loss", "node_cordon", "controller_restart"):
                fault["duration"] = draw(st.sampled_from([10, 300, 1200]))
        else:
            fault.update(per_operation(draw, kind))
        faults.append(fault)
    return faults


PER_OPERATION = ["wake_failure", "api_conflict", "api_error", "watch_delay", "watch_drop"]


def per_operation(draw: st.DrawFn, kind: str) -> dict[str, Any]:
    fault: dict[str, Any] = {"probability": draw(st.sampled_from([0.02, 0.2, 0.6]))}
    if kind == "wake_failure":
        fault["mode"] = draw(st.sampled_from(["error", "timeout"]))
    elif kind == "watch_delay":
        fault["delay"] = draw(st.sampled_from([1, 10, 60]))
    return fault


@st.composite
def machine_scenarios(draw: st.DrawFn) -> Scenario:
    """The world of the state machine: a cluster, models, a policy and per-operation faults
    armed for its whole life (rules switch them on and off); demand comes from the rules."""
    base = draw(_cluster_and_models())
    faults = [
        {"kind": kind, **per_operation(draw, kind)}
        for kind in draw(st.lists(st.sampled_from(PER_OPERATION), max_size=3, unique=True))
    ]
    data: dict[str, Any] = {
        "name": "machine",
        "seed": draw(st.integers(0, 2**32 - 1)),
        "duration": "3650d",
        **base,
        "launchers": {
            "max_instances": draw(st.integers(1, 3)),
            "per_node": draw(st.integers(0, 1)),
        },
        "policy": _policy(draw, None),
        "demand": [{"model": base["models"][0]["name"], "rate_per_h": 0}],
        "faults": faults,
    }
    return Scenario.model_validate(data)


def fits(scenario: Scenario, model_name: str) -> bool:
    """Whether one replica of the model can ever run: its share of weights fits a GPU."""
    model = scenario.model(model_name)
    pool = scenario.cluster.node_pools[0]
    return (
        model.weights_gib / model.gpus + 1.0 < pool.gpu_memory_gib
        and model.gpus <= pool.gpus_per_node
    )
