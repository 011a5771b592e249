"""The platform around the decisions: probes, engine starts in parts, pinning, stops, shared disks.

Each test runs a small scenario and reads its trace, in simulated time.
"""

from typing import Any

import pytest

from fma.adapters.sim.runner import run_scenario
from fma.api.latency import GB, GIB
from fma.api.scenario import Scenario

Event = dict[str, Any]
LATENCY = {
    "readiness_probe_delay_s": 2,
    "readiness_probe_period_s": 5,
    "launcher_probe_delay_s": 2,
    "launcher_probe_period_s": 5,
}


def scenario(
    *points: tuple[float, int],
    actuation: str = "fma",
    model: dict[str, Any] | None = None,
    latency: dict[str, float] | None = None,
    hold: str | None = None,
) -> Scenario:
    demand: dict[str, Any] = (
        {"model": "m", "rate_per_h": 20, "hold": hold}
        if hold
        else {"model": "m", "pattern": "trace", "points": [list(p) for p in points]}
    )
    return Scenario.model_validate(
        {
            "name": "platform",
            "duration": 1800,
            "cluster": {
                "node_pools": [
                    {
                        "name": "n",
                        "count": 1,
                        "gpus_per_node": 4,
                        "disk_gbps": 2,
                        "gpu_allocation": "lowest-index",
                    }
                ]
            },
            "models": [{"name": "m", "weights_gib": 8, "engine_init_s": 10, **(model or {})}],
            "latency": {**LATENCY, **(latency or {})},
            "launchers": {"per_node": 1, "max_instances": 4},
            "policy": {"actuation": actuation},
            "demand": [demand],
        }
    )


def events(scenario: Scenario) -> list[Event]:
    return run_scenario(scenario, 3).trace.events


def of(trace: list[Event], kind: str) -> list[Event]:
    return [e for e in trace if e["kind"] == kind]


def starts(trace: list[Event]) -> list[float]:
    """Seconds from each instance_starting to its instance_awake, in order."""
    open_: dict[str, float] = {}
    out = []
    for e in trace:
        key = f"{e.get('provider')}/{e.get('instance')}"
        if e["kind"] == "instance_starting":
            open_[key] = e["t"]
        elif e["kind"] == "instance_awake" and key in open_:
            out.append(e["t"] - open_.pop(key))
    return out


def test_a_requester_pod_turns_ready_at_its_probe_after_the_relay() -> None:
    trace = events(scenario(hold="5m"))
    started = {e["requester"]: e["t"] for e in of(trace, "requester_started")}
    relayed = {e["requester"]: e["t"] for e in of(trace, "ready")}
    ready = of(trace, "pod_ready")
    assert len(ready) >= 3
    for e in ready:
        uid = e["requester"]
        since_first_s = e["t"] - (started[uid] + 2)
        assert since_first_s / 5 == pytest.approx(round(since_first_s / 5), abs=1e-6)  # a tick
        assert relayed[uid] <= e["t"] < relayed[uid] + 5 + 1e-6  # the first one after


def test_the_hold_counts_from_the_pod_turning_ready() -> None:
    trace = events(scenario(hold={"dist": "fixed", "mean": "5m"}))  # type: ignore[arg-type]
    ready = {e["requester"]: e["t"] for e in of(trace, "pod_ready")}
    deleting = {e["requester"]: e["t"] for e in of(trace, "requester_deleting")}
    held = [deleting[u] - ready[u] for u in ready if u in deleting]
    assert held and all(h == pytest.approx(300) for h in held)


def test_a_launcher_turns_ready_at_its_probe_after_its_process_serves() -> None:
    trace = events(scenario((0, 0)))
    (created,) = of(trace, "provider_created")
    (ready,) = of(trace, "launcher_ready")
    first_probe_s = created["t"] + 0.05 + 5 + 2  # scheduled, its container started, delay
    waited_s = ready["t"] - first_probe_s
    assert waited_s / 5 == pytest.approx(round(waited_s / 5), abs=1e-6)
    assert 15 <= ready["t"] - created["t"] < 15 + 5


def test_a_node_compiles_a_model_once() -> None:
    compile_ = {"compile_s": 40, "compile_cached_s": 4}
    trace = events(scenario((0, 1), (300, 0), (600, 1), actuation="cold", model=compile_))
    first, second = starts(trace)
    # the same start but for torch.compile, each seen at the controller's next probe (<= 2 s)
    assert first - second == pytest.approx(40 - 4, abs=2.0)


def test_tensor_parallel_workers_import_vllm_again_in_a_launcher() -> None:
    alone = starts(events(scenario((0, 1))))[0]
    tp = starts(events(scenario((0, 1), model={"gpus": 2})))[0]
    # the same weights over the one disk; the workers' import of vLLM on top
    assert tp - alone == pytest.approx(10, abs=2.0)


def test_a_first_sleep_pins_host_memory_and_later_ones_do_not() -> None:
    trace = events(scenario((0, 1), (300, 0), (600, 1), (900, 0)))
    falls = {}
    sleeps = []
    for e in trace:
        if e["kind"] == "instance_falling_asleep":
            falls[e["instance"]] = e["t"]
        elif e["kind"] == "instance_sleeping":
            sleeps.append(e["t"] - falls.pop(e["instance"]))
    assert len(sleeps) == 2
    pin_s = 8 * GIB / (7.2 * GB)
    assert sleeps[0] - sleeps[1] == pytest.approx(pin_s, rel=0.01)


def test_a_deleted_requesters_gpus_are_free_only_once_its_container_stopped() -> None:
    trace = events(scenario((0, 1), (300, 0), latency={"pod_stop_s": 3}))
    (deleting,) = of(trace, "requester_deleting")
    (deleted,) = of(trace, "requester_deleted")
    assert deleted["t"] - deleting["t"] >= 3


def test_loads_at_once_share_the_disk() -> None:
    alone = starts(events(scenario((0, 1), actuation="cold")))[0]
    both = starts(events(scenario((0, 2), actuation="cold")))
    load_s = 8 * GIB / (2 * GB)
    assert len(both) == 2
    assert min(both) - alone == pytest.approx(load_s, abs=2.5)
