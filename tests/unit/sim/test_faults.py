"""Each fault kind, selected in a scenario's ``faults`` list, does what it says and is survived.

Every run here drains to quiescence, so the trace checkers judge safety during the faults,
liveness after them, and leaks at the end.
"""

from collections import Counter
from typing import Any

import pytest

from fma.adapters.sim.runner import RunResult, run_scenario
from fma.api.scenario import Fault, Scenario
from fma.bench.invariants import check_all

DRAIN_S = 7 * 86400.0


def scenario(faults: list[dict[str, Any]], **over: Any) -> Scenario:
    data: dict[str, Any] = {
        "name": "faults",
        "seed": 11,
        "duration": "3h",
        "cluster": {
            "node_pools": [
                {"name": "n", "count": 3, "gpus_per_node": 2, "gpu_memory_gib": 80, "disk_gbps": 2}
            ]
        },
        "models": [
            {"name": "a", "weights_gib": 16, "engine_init_s": 20},
            {"name": "b", "weights_gib": 30, "engine_init_s": 30},
        ],
        "policy": {"actuation": "direct-sleep"},
        "demand": [
            {"model": "a", "rate_per_h": 20, "hold": "5m"},
            {"model": "b", "rate_per_h": 10, "hold": "10m"},
        ],
        "faults": faults,
    }
    data.update(over)
    return Scenario.model_validate(data)


def run(faults: list[dict[str, Any]], **over: Any) -> RunResult:
    result = run_scenario(scenario(faults, **over), drain_s=DRAIN_S)
    assert check_all(result.trace.events) == []
    kinds = [e["kind"] for e in result.trace.events]
    assert "quiescent" in kinds, "the run never became quiet after the faults"
    return result


def kinds(result: RunResult) -> Counter[str]:
    return Counter(e["kind"] for e in result.trace.events)


def injected(result: RunResult, fault: str) -> list[dict[str, Any]]:
    return [e for e in result.trace.events if e["kind"] == "fault" and e["fault"] == fault]


def actuation_count(result: RunResult) -> int:
    return kinds(result)["actuation"]


@pytest.mark.parametrize("policy", ["direct-sleep", "fma"])
def test_node_loss_moves_work_elsewhere_and_the_node_returns(policy: str) -> None:
    result = run(
        [{"kind": "node_loss", "at": "1h", "node": "n-0", "duration": "30m"}],
        policy={"actuation": policy},
    )
    events = result.trace.events
    lost = next(e for e in events if e["kind"] == "node_lost")
    back = next(e for e in events if e["kind"] == "node_restored")
    assert (lost["node"], lost["t"], back["t"]) == ("n-0", 3600.0, 5400.0)
    placed_meanwhile = [
        e for e in events if e["kind"] == "requester_scheduled" and lost["t"] <= e["t"] < back["t"]
    ]
    assert placed_meanwhile and all(e["node"] != "n-0" for e in placed_meanwhile)
    assert any(e["kind"] == "requester_scheduled" and e["node"] == "n-0" for e in events[-200:])


def test_cordon_keeps_new_requesters_off_the_node_until_lifted() -> None:
    result = run([{"kind": "node_cordon", "at": "30m", "node": "n-1", "duration": "1h"}])
    events = result.trace.events
    start = next(e["t"] for e in events if e["kind"] == "node_cordoned")
    end = next(e["t"] for e in events if e["kind"] == "node_uncordoned")
    assert (start, end) == (1800.0, 5400.0)
    assert not any(
        e["kind"] == "requester_scheduled" and e["node"] == "n-1" and start <= e["t"] < end
        for e in events
    )


def test_instance_crashes_delete_bound_requesters_which_are_replaced() -> None:
    result = run([{"kind": "instance_crash", "rate_per_h": 6}])
    crashes = injected(result, "instance_crash")
    assert len(crashes) >= 5
    reasons = Counter(e["reason"] for e in result.trace.events if e["kind"] == "requester_deleting")
    assert reasons["its instance stopped"] >= 1
    assert result.unserved == []


def test_launcher_crashes_lose_instances_but_requesters_are_served_again() -> None:
    result = run(
        [{"kind": "launcher_crash", "rate_per_h": 4}],
        policy={"actuation": "fma"},
        launchers={"max_instances": 2, "per_node": 1},
    )
    assert len([e for e in injected(result, "launcher_crash") if e["provider"]]) >= 3
    assert kinds(result)["launcher_crashed"] >= 3
    assert result.unserved == []


@pytest.mark.parametrize("mode", ["error", "timeout"])
def test_failed_wakes_are_retried_until_they_succeed(mode: str) -> None:
    result = run([{"kind": "wake_failure", "probability": 0.5, "mode": mode}])
    failures = injected(result, "wake_failure")
    assert failures and {e["mode"] for e in failures} == {mode}
    assert Counter(e["path"] for e in result.trace.events if e["kind"] == "actuation")["hot"] > 0


def test_a_timed_out_wake_costs_the_http_timeout() -> None:
    """The worker hangs for the client timeout; the engine woke meanwhile, so the hot start is
    slow by about that much, not lost."""
    base = run([])
    slow = run([{"kind": "wake_failure", "probability": 1.0, "mode": "timeout"}])

    def hot_p50(result: RunResult) -> float:
        hot = sorted(
            e["latency_s"]
            for e in result.trace.events
            if e["kind"] == "actuation" and e["path"] == "hot"
        )
        return hot[len(hot) // 2]

    timeout_s = Scenario.model_fields["latency"].default.http_timeout_s
    assert hot_p50(slow) >= hot_p50(base) + timeout_s * 0.9


@pytest.mark.parametrize("kind", ["api_conflict", "api_error"])
def test_failed_writes_are_retried(kind: str) -> None:
    result = run([{"kind": kind, "probability": 0.3}])
    assert len(injected(result, kind)) > 10
    assert actuation_count(result) > 0 and result.unserved == []


def test_delayed_watch_events_only_slow_things_down() -> None:
    base = run([])
    delayed = run([{"kind": "watch_delay", "probability": 1.0, "delay": "20s"}])
    assert len(injected(delayed, "watch_delay")) > 50
    assert actuation_count(delayed) > 0 and delayed.unserved == []
    assert actuation_count(base) > 0


def test_dropped_watch_events_are_repaired_by_the_relist_when_the_window_ends() -> None:
    result = run([{"kind": "watch_drop", "probability": 1.0, "start": "1h", "until": "90m"}])
    events = result.trace.events
    relists = [e["t"] for e in events if e["kind"] == "relist"]
    assert 5400.0 in relists
    during = [e for e in events if e["kind"] == "bind" and 3600.0 + 1 < e["t"] < 5400.0]
    # Nothing is bound from a notification in the window: only retries already queued act.
    assert len(during) <= 3


def test_controller_restarts_lose_memory_but_not_work() -> None:
    result = run([{"kind": "controller_restart", "rate_per_h": 3, "duration": "30s"}])
    downs = [e["t"] for e in result.trace.events if e["kind"] == "controller_down"]
    ups = [e["t"] for e in result.trace.events if e["kind"] == "controller_up"]
    assert len(downs) == len(ups) >= 3
    assert all(up == pytest.approx(down + 30.0) for down, up in zip(downs, ups, strict=True))


def test_every_fault_together() -> None:
    result = run(
        [
            {"kind": "node_loss", "rate_per_h": 0.5, "duration": "20m"},
            {"kind": "node_cordon", "rate_per_h": 0.5, "duration": "10m"},
            {"kind": "instance_crash", "rate_per_h": 2},
            {"kind": "launcher_crash", "rate_per_h": 1},
            {"kind": "controller_restart", "rate_per_h": 1},
            {"kind": "wake_failure", "probability": 0.2},
            {"kind": "wake_failure", "probability": 0.05, "mode": "timeout"},
            {"kind": "api_conflict", "probability": 0.1},
            {"kind": "api_error", "probability": 0.05},
            {"kind": "watch_delay", "probability": 0.2, "delay": 5},
            {"kind": "watch_drop", "probability": 0.05, "until": "2h"},
        ],
        policy={"actuation": "fma"},
        launchers={"max_instances": 3, "per_node": 1},
    )
    assert len({e["fault"] for e in result.trace.events if e["kind"] == "fault"}) >= 8


def test_faults_stop_at_until_and_liveness_is_judged_from_then() -> None:
    result = run([{"kind": "api_error", "probability": 0.5, "until": "1h"}])
    off = next(e for e in result.trace.events if e["kind"] == "faults_off")
    assert off["t"] == 3600.0 and off["bound_s"] > 0
    assert all(e["t"] < 3600.0 for e in injected(result, "api_error"))


def test_no_faults_means_liveness_is_judged_from_the_start() -> None:
    result = run([])
    off = next(e for e in result.trace.events if e["kind"] == "faults_off")
    assert off["t"] == 0.0


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ({"kind": "node_loss"}, "exactly one of 'at' and 'rate_per_h'"),
        ({"kind": "node_loss", "at": 5, "rate_per_h": 1}, "exactly one of 'at' and 'rate_per_h'"),
        ({"kind": "api_conflict"}, "needs 'probability'"),
        ({"kind": "api_conflict", "probability": 0.1, "at": 4}, "per operation"),
        ({"kind": "watch_delay", "probability": 1}, "needs 'delay'"),
        ({"kind": "wake_failure", "probability": 2}, "less than or equal to 1"),
        ({"kind": "api_error", "probability": 1, "start": 10, "until": 5}, "after 'start'"),
        ({"kind": "disk_fire", "at": 1}, "kind"),
    ],
)
def test_bad_faults_are_refused_with_the_reason(fault: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Fault.model_validate(fault)


def test_a_fault_naming_an_unknown_node_is_refused() -> None:
    with pytest.raises(ValueError, match=r"faults\[0\]\.node: unknown node 'x-9'"):
        scenario([{"kind": "node_loss", "at": 10, "node": "x-9"}])
