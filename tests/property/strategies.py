"""Hypothesis strategies for small, valid scenarios, with or without faults."""

from typing import Any

from hypothesis import strategies as st

from fma.api.scenario import FAULT_MODES, Scenario

ACTUATIONS = ["fma", "direct-sleep", "cold"]


@st.composite
def _cluster_and_models(draw: st.DrawFn, *, tight: bool = False) -> dict[str, Any]:
    """A node pool and a few models. ``tight`` worlds are small and crowded — one or two nodes
    of one or two GPUs, little memory, several models — so that sleepers, budgets, caps and
    ports collide within a few steps."""
    gpus_per_node = draw(st.integers(1, 2) if tight else st.integers(1, 4))
    gpu_memory_gib = draw(st.sampled_from([24, 40] if tight else [24, 40, 80]))
    nodes = draw(st.sampled_from([1, 1, 2]) if tight else st.integers(1, 3))
    host_memory_gib = draw(st.sampled_from([32, 64, 128] if tight else [32, 64, 256, 1024]))
    models = []
    for i in range(draw(st.integers(2, 3) if tight else st.integers(1, 3))):
        utilization = draw(st.sampled_from([0.8, 0.9, 0.95]))
        models.append(
            {
                "name": f"m{i}",
                "weights_gib": draw(st.floats(1, utilization * gpu_memory_gib - 1)),
                "gpus": draw(st.integers(1, gpus_per_node)),
                "engine_init_s": draw(st.floats(1, 60)),
                "port": draw(st.sampled_from([8000, 8001])),
                "gpu_memory_utilization": utilization,
                # Now and then an engine that refuses to sleep (vLLM on a CPU).
                "sleep_mode": draw(st.sampled_from([True, True, True, True, False])),
            }
        )
    return {
        "cluster": {
            "node_pools": [
                {
                    "name": "pool",
                    "count": nodes,
                    "gpus_per_node": gpus_per_node,
                    "gpu_memory_gib": gpu_memory_gib,
                    "host_memory_gib": host_memory_gib,
                    "d2h_gbps": draw(st.sampled_from([1, 25])),
                    "gpu_allocation": draw(st.sampled_from(["device-plugin", "lowest-index"])),
                }
            ]
        },
        "models": models,
    }


def _policy(
    draw: st.DrawFn, actuation: str | None, *, mostly_sleeping: bool = False
) -> dict[str, Any]:
    """A policy; ``mostly_sleeping`` draws ``cold`` (which never sleeps) only now and then, and
    ``fma`` (launchers: their caps, reclaims and readiness) most often."""
    choices = ["fma", "fma", "fma", "direct-sleep", "cold"] if mostly_sleeping else ACTUATIONS
    return {
        "actuation": actuation or draw(st.sampled_from(choices)),
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


OCCURRENCES = [
    "node_loss",
    "node_cordon",
    "node_not_ready",
    "instance_crash",
    "launcher_crash",
    "controller_restart",
]


@st.composite
def fault_lists(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Up to six faults; occurrences at rates, per-operation faults with probabilities and,
    where a kind has several, a mode."""
    faults: list[dict[str, Any]] = []
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from([*OCCURRENCES, *PER_OPERATION]))
        fault: dict[str, Any] = {"kind": kind}
        if kind in OCCURRENCES:
            fault["rate_per_h"] = draw(st.sampled_from([0.5, 2, 6]))
            if kind in ("node_loss", "node_cordon", "node_not_ready", "controller_restart"):
                fault["duration"] = draw(st.sampled_from([10, 300, 1200]))
        else:
            fault.update(per_operation(draw, kind))
        faults.append(fault)
    return faults


PER_OPERATION = [
    "wake_failure",
    "sleep_failure",
    "create_failure",
    "delete_failure",
    "relay_failure",
    "gpu_query_failure",
    "api_conflict",
    "api_error",
    "watch_delay",
    "watch_drop",
]


def per_operation(draw: st.DrawFn, kind: str) -> dict[str, Any]:
    fault: dict[str, Any] = {"probability": draw(st.sampled_from([0.02, 0.2, 0.6]))}
    if kind in FAULT_MODES:
        fault["mode"] = draw(st.sampled_from(FAULT_MODES[kind]))
    elif kind == "watch_delay":
        fault["delay"] = draw(st.sampled_from([1, 10, 60]))
    return fault


@st.composite
def machine_scenarios(draw: st.DrawFn) -> Scenario:
    """The world of the state machine: a cluster, models, a policy and per-operation faults
    armed for its whole life (rules switch them on and off); demand comes from the rules.
    The world is tight (see :func:`_cluster_and_models`): a search of a few hundred examples
    must reach the collisions the oracle judges."""
    base = draw(_cluster_and_models(tight=True))
    faults = [
        {"kind": kind, **per_operation(draw, kind)}
        for kind in draw(st.lists(st.sampled_from(PER_OPERATION), max_size=3, unique=True))
    ]
    data: dict[str, Any] = {
        "name": "machine",
        "seed": draw(st.integers(0, 2**32 - 1)),
        "duration": "3650d",
        **base,
        # Often one instance per launcher and one launcher per node: a full launcher must
        # then make room rather than be joined by another.
        "launchers": {
            "max_instances": draw(st.sampled_from([1, 1, 2, 3])),
            "per_node": draw(st.integers(0, 1)),
        },
        "policy": {
            **_policy(draw, None, mostly_sleeping=True),
            "launchers_per_node_max": draw(st.sampled_from([None, 1])),
            # A small residue now and then: more sleepers beside an awake engine on these
            # small GPUs (at the default 3 GiB a 24 GiB GPU keeps at most one).
            "sleeper_residue_gib": draw(st.sampled_from([1.0, 3.0])),
        },
        # Now and then slow stops: a new requester then waits, unbound, for its GPUs to be let
        # go, which is when most of what befalls a node matters.
        "latency": {"engine_stop_s": draw(st.sampled_from([2.0, 20.0]))},
        "demand": [{"model": base["models"][0]["name"], "rate_per_h": 0}],
        "faults": faults,
    }
    return Scenario.model_validate(data)


def fits(scenario: Scenario, model_name: str) -> bool:
    """Whether one replica of the model can ever run: its share of weights fits a GPU."""
    model = scenario.model(model_name)
    pool = scenario.cluster.node_pools[0]
    return (
        model.weights_gib / model.gpus < model.gpu_memory_utilization * pool.gpu_memory_gib
        and model.gpus <= pool.gpus_per_node
    )
