"""`fma sim run` honours policy.actuation and policy.eviction, and reports every path."""

from fma.adapters.sim.runner import run_scenario
from fma.api.scenario import Scenario
from fma.bench.summary import summarize


def scenario(actuation: str, eviction: str = "lru", **policy: object) -> Scenario:
    return Scenario.model_validate(
        {
            "name": "policies",
            "seed": 11,
            "duration": "3h",
            "cluster": {
                "node_pools": [
                    {"name": "n", "count": 1, "gpus_per_node": 4, "host_memory_gib": 128}
                ]
            },
            "models": [
                {"name": f"m{k}", "weights_gib": 8 + 6 * k, "engine_init_s": 20 + 10 * k}
                for k in range(4)
            ],
            "policy": {"actuation": actuation, "eviction": eviction, **policy},
            "demand": [{"model": f"m{k}", "rate_per_h": 12, "hold": "5m"} for k in range(4)],
        }
    )


def paths(s: Scenario) -> dict[str, int]:
    result = run_scenario(s)
    summary = summarize(
        result.trace.events,
        scenario=s.name,
        seed=result.seed,
        sim_time_s=s.duration,
        wall_s=0.0,
        gpu_count=result.gpu_count,
        unserved=len(result.unserved),
        slo={},
    )
    assert summary["invariant_violations"] == []
    return {p: summary["actuations"][p] for p in ("hot", "warm", "cold_launcher", "cold")}


def test_cold_policy_only_ever_starts_cold() -> None:
    counts = paths(scenario("cold"))
    assert counts["cold"] > 0 and counts["hot"] == counts["warm"] == counts["cold_launcher"] == 0


def test_direct_sleep_wakes_but_never_uses_launchers() -> None:
    counts = paths(scenario("direct-sleep"))
    assert counts["hot"] > 0 and counts["cold"] > 0
    assert counts["warm"] == counts["cold_launcher"] == 0


def test_fma_uses_launchers() -> None:
    counts = paths(scenario("fma"))
    assert counts["hot"] > 0 and counts["cold_launcher"] > 0
    assert counts["cold"] == 0


def test_eviction_policy_changes_what_is_kept() -> None:
    """Under a tight sleeping budget, LRU and cost-aware eviction keep different sleepers."""
    squeeze = {"sleeping_gib_per_gpu_max": 20}
    lru = run_scenario(scenario("direct-sleep", "lru", **squeeze)).trace.events
    cost = run_scenario(scenario("direct-sleep", "cost", **squeeze)).trace.events
    evicted = [
        [
            e["provider"]
            for e in events
            if e["kind"] == "provider_deleted" and "evicted" in e["reason"]
        ]
        for events in (lru, cost)
    ]
    assert evicted[0] and evicted[1]
    assert evicted[0] != evicted[1]
