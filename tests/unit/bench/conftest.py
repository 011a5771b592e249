"""A small scenario for report, sweep and planning tests: one node, two models, one hour."""

import pytest

from fma.api.scenario import Scenario


@pytest.fixture
def small() -> Scenario:
    return Scenario.model_validate(
        {
            "name": "small",
            "description": "Two models sharing four GPUs for an hour.",
            "seed": 11,
            "duration": "1h",
            "cluster": {
                "node_pools": [{"name": "n", "count": 1, "gpus_per_node": 4, "disk_gbps": 2}]
            },
            "models": [
                {"name": "a", "weights_gib": 16, "engine_init_s": 30},
                {"name": "b", "weights_gib": 8, "engine_init_s": 20},
            ],
            "demand": [
                {"models": ["a", "b"], "rate_per_h": 30, "hold": "5m"},
            ],
            "slo": {"p95_actuation_s": 60},
        }
    )
