"""Hypothesis strategies for small, valid scenarios."""

from typing import Any

from hypothesis import strategies as st

from fma.api.scenario import Scenario


@st.composite
def scenarios(draw: st.DrawFn, *, actuation: str | None = None) -> Scenario:
    """A small cluster, a few models that fit one GPU's memory, Poisson demand."""
    gpus_per_node = draw(st.integers(1, 4))
    gpu_memory_gib = draw(st.sampled_from([24, 40, 80]))
    models = [
        {
            "name": f"m{i}",
            "weights_gib": draw(st.floats(1, gpu_memory_gib - 1)),
            "gpus": draw(st.integers(1, gpus_per_node)),
            "engine_init_s": draw(st.floats(1, 60)),
        }
        for i in range(draw(st.integers(1, 3)))
    ]
    data: dict[str, Any] = {
        "name": "generated",
        "seed": draw(st.integers(0, 2**32 - 1)),
        "duration": draw(st.sampled_from([1800, 3600, 7200])),
        "cluster": {
            "node_pools": [
                {
                    "name": "pool",
                    "count": draw(st.integers(1, 2)),
                    "gpus_per_node": gpus_per_node,
                    "gpu_memory_gib": gpu_memory_gib,
                    "host_memory_gib": draw(st.sampled_from([64, 256, 1024])),
                }
            ]
        },
        "models": models,
        "policy": {
            "actuation": actuation or draw(st.sampled_from(["fma", "direct-sleep", "cold"])),
            "eviction": draw(st.sampled_from(["lru", "oldest", "cost"])),
        },
        "demand": [
            {
                "model": m["name"],
                "rate_per_h": draw(st.floats(1, 60)),
                "hold": draw(st.sampled_from([60, 600, 1800])),
            }
            for m in models
        ],
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
