"""Evidence from traces: simulator runs of each path, hand-made traces for the edge cases, and
the operator's records in its ``actuation`` events."""

import json
from pathlib import Path
from typing import Any

import pytest

from fma.adapters.sim.runner import run_scenario
from fma.api.scenario import Scenario
from fma.bench.actuation.classify import ActuationCondition as C
from fma.bench.actuation.classify import classify
from fma.bench.actuation.from_trace import (
    TraceProblem,
    evidence_from_events,
    metrics_from_traces,
)

Event = dict[str, Any]


def scenario(actuation: str, per_node: int, hold: str = "10m", **extra: Any) -> Scenario:
    return Scenario.model_validate(
        {
            "name": f"{actuation}-{per_node}",
            "seed": 5,
            "duration": "3h",
            "cluster": {"node_pools": [{"name": "n", "count": 1, "gpus_per_node": 2}]},
            "models": [{"name": "m", "weights_gib": 16, "engine_init_s": 20}],
            "launchers": {"max_instances": 2, "per_node": per_node},
            "policy": {"actuation": actuation},
            "demand": [{"model": "m", "rate_per_h": 6, "hold": hold}],
            **extra,
        }
    )


def verdicts(events: list[Event]) -> list[tuple[C | None, str | None]]:
    """(verdict, the controller's path) of every actuated requester, in order."""
    found = [e for e in evidence_from_events(events) if e.ready_s is not None]
    return [(classify(e).condition, e.controller_path) for e in found]


PATH = {"hot": C.T_HOT, "warm": C.T_WARM, "cold_launcher": C.T_COLD_LAUNCHER, "cold": C.T_COLD}


@pytest.mark.parametrize(
    ("actuation", "per_node", "first"),
    [
        ("fma", 1, C.T_WARM),  # the population made a launcher ahead
        ("fma", 0, C.T_COLD_LAUNCHER),  # none ahead: the controller makes one
        ("cold", 0, C.T_COLD),
        ("direct-sleep", 0, C.T_COLD),
    ],
)
def test_each_path_of_a_simulated_run_is_classified_as_the_controller_recorded(
    actuation: str, per_node: int, first: C
) -> None:
    events = run_scenario(scenario(actuation, per_node)).trace.events
    found = verdicts(events)
    assert len(found) >= 5
    assert found[0][0] is first
    assert [v for v, _ in found] == [PATH[p] for _, p in found if p is not None]


@pytest.mark.parametrize("actuation", ["fma", "direct-sleep"])
def test_a_simulated_run_wakes_sleepers_and_calls_them_hot(actuation: str) -> None:
    events = run_scenario(scenario(actuation, 0, hold="2m")).trace.events
    found = verdicts(events)
    assert (C.T_HOT, "hot") in found
    assert all(v is PATH[p] for v, p in found if p is not None)


def test_the_report_of_a_trace_file_matches_the_summary(tmp_path: Path) -> None:
    result = run_scenario(scenario("fma", 1, hold="2m"))
    path = tmp_path / "events.jsonl"
    result.trace.write_jsonl(path)
    (it,) = metrics_from_traces([path]).iterations
    actuations = [e for e in result.trace.events if e["kind"] == "actuation"]
    assert it.actuations == len(actuations)
    assert it.disagreements == it.unclassified == 0
    share = {p: sum(1 for a in actuations if a["path"] == p) / len(actuations) for p in PATH}
    assert it.hot_hit_rate == pytest.approx(share["hot"], abs=1e-6)
    assert it.warm_hit_rate == pytest.approx(share["warm"], abs=1e-6)
    assert it.cold_launcher_rate == pytest.approx(share["cold_launcher"], abs=1e-6)


# --- hand-made traces ----------------------------------------------------------------------------


class T:
    """A trace under construction, one event per call, at increasing times."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def add(self, t: float, kind: str, **ids: Any) -> "T":
        self.events.append({"t": t, "kind": kind, **ids})
        return self

    def launcher(self, t: float, name: str, node: str = "n0", ready_at: float | None = None) -> "T":
        self.add(t, "provider_created", provider=name, node=node, provider_kind="launcher")
        return self if ready_at is None else self.add(ready_at, "launcher_ready", provider=name)

    def requester(self, t: float, uid: str) -> "T":
        return self.add(t, "requester_created", requester=uid, model="m")

    def bind(self, t: float, uid: str, provider: str, instance: str, path: str) -> "T":
        return self.add(t, "bind", provider=provider, requester=uid, instance=instance, path=path)

    def instance(self, t: float, kind: str, provider: str, instance: str) -> "T":
        return self.add(t, f"instance_{kind}", provider=provider, instance=instance)

    def actuated(self, t: float, uid: str, path: str, **record: Any) -> "T":
        self.add(t, "actuation", requester=uid, path=path, latency_s=1.0, model="m", **record)
        return self.add(t, "ready", requester=uid)


def by_uid(events: list[Event]) -> dict[str, Any]:
    return {e.requester: e for e in evidence_from_events(events)}


def test_several_launchers_on_one_node_are_told_apart_by_the_binding() -> None:
    trace = (
        T()
        .launcher(0, "l1", ready_at=10)
        .launcher(1, "l-spare", ready_at=11)  # a launcher without instances, never bound
        .requester(100, "a")
        .requester(101, "b")
        .bind(102, "a", "l1", "i-a", "warm")
        .instance(103, "starting", "l1", "i-a")
        .launcher(104, "l2")
        .bind(104, "b", "l2", "i-b", "cold_launcher")
        .add(120, "launcher_ready", provider="l2")
        .instance(121, "starting", "l2", "i-b")
        .actuated(130, "a", "warm")
        .actuated(150, "b", "cold_launcher")
    )
    found = by_uid(trace.events)
    assert set(found) == {"a", "b"}  # the spare launcher makes no entry
    assert classify(found["a"]).condition is C.T_WARM
    assert classify(found["b"]).condition is C.T_COLD_LAUNCHER
    assert found["b"].provider_create_started_s == 104
    assert found["a"].provider_create_started_s is None


def test_only_the_bound_instance_of_a_launcher_counts() -> None:
    trace = (
        T()
        .launcher(0, "l1", ready_at=10)
        .requester(100, "a")
        .bind(101, "a", "l1", "i-2", "warm")
        .instance(102, "waking", "l1", "i-1")  # another instance of the same launcher
        .instance(103, "awake", "l1", "i-1")
        .instance(104, "starting", "l1", "i-2")
        .actuated(140, "a", "warm")
    )
    evidence = by_uid(trace.events)["a"]
    assert evidence.wake_started_s is None
    assert evidence.instance_started_s == 104
    assert classify(evidence).condition is C.T_WARM


def test_a_requester_never_ready_is_reported_and_the_rest_are_measured(tmp_path: Path) -> None:
    trace = (
        T()
        .launcher(0, "l1", ready_at=10)
        .requester(100, "stuck")
        .bind(101, "stuck", "l1", "i-1", "warm")
        .instance(102, "starting", "l1", "i-1")
        .add(700, "unbind", provider="l1", requester="stuck")
        .requester(800, "fine")
        .bind(801, "fine", "l1", "i-1", "hot")
        .instance(802, "waking", "l1", "i-1")
        .instance(803, "awake", "l1", "i-1")
        .actuated(804, "fine", "hot")
    )
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in trace.events))
    (it,) = metrics_from_traces([path]).iterations
    stuck, fine = it.launcher_infos
    assert stuck.requester_info.uid == "stuck" and stuck.requester_info.ready_timestamp is None
    assert stuck.actuation_condition is C.T_WARM and stuck.t_instance_create is None
    assert fine.actuation_condition is C.T_HOT and fine.t_wake == 4.0
    assert (it.actuations, it.not_ready, it.hot_hit_rate) == (1, 1, 1.0)


def test_a_wake_in_flight_at_the_end_of_the_trace_is_hot_and_not_counted() -> None:
    trace = (
        T()
        .launcher(0, "l1", ready_at=10)
        .requester(100, "a")
        .bind(101, "a", "l1", "i-1", "hot")
        .instance(102, "waking", "l1", "i-1")
    )
    evidence = by_uid(trace.events)["a"]
    assert (evidence.wake_started_s, evidence.wake_ended_s, evidence.ready_s) == (102, None, None)
    assert classify(evidence).condition is C.T_HOT


def test_a_binding_not_yet_acted_on_has_no_verdict() -> None:
    trace = T().launcher(0, "l1", ready_at=10).requester(100, "a").bind(101, "a", "l1", "i", "hot")
    assert classify(by_uid(trace.events)["a"]).condition is None


def test_a_later_binding_after_the_actuation_is_not_this_actuation() -> None:
    trace = (
        T()
        .launcher(0, "l1", ready_at=10)
        .requester(100, "a")
        .bind(101, "a", "l1", "i-1", "warm")
        .instance(102, "starting", "l1", "i-1")
        .actuated(140, "a", "warm")
        .bind(500, "a", "l1", "i-1", "hot")
        .instance(501, "waking", "l1", "i-1")
    )
    evidence = by_uid(trace.events)["a"]
    assert evidence.bound_s == 101 and evidence.wake_started_s is None


def test_an_event_without_a_needed_field_is_named() -> None:
    events = [*T().requester(1, "a").events, {"t": 2, "kind": "bind", "requester": "a"}]
    with pytest.raises(TraceProblem, match=r"event 2 \(bind\): missing field 'provider'"):
        evidence_from_events(events)
    with pytest.raises(TraceProblem, match="field 't' is not a number"):
        evidence_from_events([{"t": "soon", "kind": "ready", "requester": "a"}])


# --- the operator's record in its actuation events -----------------------------------------------


def test_the_operators_record_gives_the_pods_own_timestamps() -> None:
    # The operator's trace has no requester_created or launcher_ready events; its record carries
    # the Pods' whole-second timestamps and its own moments.
    t0 = 1_800_000_000.0
    record = {
        "requester_name": "req-a",
        "provider": "launcher-x",
        "provider_kind": "launcher",
        "instance": "i-1",
        "node": "n0",
        "requester_created_t": t0 + 10,
        "requester_started_t": t0 + 11,
        "provider_created_t": t0 + 20,
        "provider_ready_t": t0 + 30,
        "bound_t": t0 + 40.25,
        "provider_create_t": None,
        "instance_create_t": t0 + 40.3,
        "wake_start_t": None,
        "wake_end_t": None,
        "relay_t": t0 + 45.5,
    }
    trace = (
        T()
        .add(
            t0 + 20.1,
            "provider_created",
            provider="launcher-x",
            node="n0",
            provider_kind="launcher",
        )
        .bind(t0 + 40.26, "uid-a", "launcher-x", "i-1", "warm")
        .instance(t0 + 40.31, "starting", "launcher-x", "i-1")
        .add(t0 + 45.6, "ready", requester="uid-a")
        .add(t0 + 45.6, "actuation", requester="uid-a", path="warm", latency_s=1, **record)
    )
    evidence = by_uid(trace.events)["uid-a"]
    assert evidence.requester_name == "req-a"
    assert evidence.requester_created_s == t0 + 10
    assert evidence.provider_created_s == t0 + 20  # the Pod's, not the trace's t0 + 20.1
    assert evidence.launcher_ready_before_bind is True
    assert (evidence.bound_s, evidence.relayed_s) == (t0 + 40.25, t0 + 45.5)
    assert classify(evidence).condition is C.T_WARM  # created after the requester, Ready before
