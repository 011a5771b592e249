"""Calibration recovers the latencies a trace was made with."""

import pytest

from fma.adapters.sim.runner import run_scenario
from fma.api.scenario import Scenario
from fma.bench.calibrate import calibrate, calibrated_scenario

TRUE_LATENCY = {
    "pod_start_s": 7.0,
    "vllm_import_s": 12.0,
    "launcher_start_s": 22.0,
    "requester_start_s": 1.2,
    "controller_reaction_s": 0.3,
    "wake_overhead_s": 0.5,
    "sleep_overhead_s": 0.4,
}
COMPILE = {"compile_s": 5.0, "compile_cached_s": 5.0}
PROBED = {"vllm_import_s", "launcher_start_s"}
"""Seen only at a probe's ticks: known to within half a probe interval."""


def scenario(policy: str, latency: dict[str, float] | None = None) -> Scenario:
    return Scenario.model_validate(
        {
            "name": "measured",
            "duration": "3h",
            "cluster": {
                "node_pools": [
                    {
                        "name": "n",
                        "count": 1,
                        "gpus_per_node": 4,
                        "h2d_gbps": 12,
                        "d2h_gbps": 8,
                        "disk_gbps": 3,
                    }
                ]
            },
            "models": [
                # one torch.compile time: the fit takes it from the scenario
                {"name": "small", "weights_gib": 8, "engine_init_s": 15, **COMPILE},
                {"name": "big", "weights_gib": 40, "engine_init_s": 40, **COMPILE},
            ],
            "latency": latency or {},
            "policy": {"actuation": policy},
            "demand": [{"models": ["small", "big"], "zipf_s": 0.5, "rate_per_h": 40, "hold": "5m"}],
        }
    )


def test_fit_recovers_the_simulated_latencies() -> None:
    traces = [
        run_scenario(scenario(policy, TRUE_LATENCY), 5).trace.events
        for policy in ("fma", "direct-sleep")
    ]
    fitted = calibrate(traces, scenario=scenario("fma"))  # base: the default latencies
    latency = fitted["latency"]
    for name, value in TRUE_LATENCY.items():
        if name in PROBED:
            assert latency[name] == pytest.approx(value, abs=1.0), name
        else:
            assert latency[name] == pytest.approx(value, rel=0.01, abs=0.01), name
    assert fitted["node_pool"]["h2d_gbps"] == pytest.approx(12, rel=0.02)
    assert fitted["node_pool"]["d2h_gbps"] == pytest.approx(8, rel=0.02)
    # An engine's start is seen at the controller's probes, at most 2 s apart.
    assert fitted["models"]["small"]["engine_init_s"] == pytest.approx(15, abs=1.0)
    assert fitted["models"]["big"]["engine_init_s"] == pytest.approx(40, abs=1.0)
    assert "vllm_import_s" in fitted["fitted"] and "scheduler_s" in fitted["not_fitted"]

    calibrated = calibrated_scenario(scenario("fma"), fitted)
    assert calibrated.latency.pod_start_s == latency["pod_start_s"]
    assert calibrated.cluster.node_pools[0].h2d_gbps == fitted["node_pool"]["h2d_gbps"]
    assert calibrated.model("big").engine_init_s == fitted["models"]["big"]["engine_init_s"]


def test_an_empty_trace_fits_nothing_and_keeps_the_base() -> None:
    fitted = calibrate([[]])
    assert fitted["fitted"] == {}
    assert fitted["latency"]["pod_start_s"] == 5.0
    assert fitted["node_pool"] == {"h2d_gbps": None, "d2h_gbps": None}
