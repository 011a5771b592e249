"""Time series replayed from a trace: GPU states, unserved requesters, actuation buckets."""

import pytest

from fma.bench.timeline import Series, actuation_counts, gpu_states, waiting_requesters
from fma.bench.usage import gpu_hours, held_gpu_seconds, waits_s


def inst(t: float, kind: str, instance: str, gpus: list[str]) -> dict[str, object]:
    return {"t": t, "kind": kind, "provider": "p", "instance": instance, "gpus": gpus}


EVENTS = [
    {"t": 0.0, "kind": "requester_created", "requester": "r1"},
    {"t": 0.0, "kind": "requester_scheduled", "requester": "r1", "gpus": ["g0", "g1"]},
    inst(10.0, "instance_starting", "a", ["g0", "g1"]),
    inst(50.0, "instance_awake", "a", ["g0", "g1"]),
    {"t": 50.0, "kind": "ready", "requester": "r1"},
    {"t": 60.0, "kind": "requester_created", "requester": "r2"},
    inst(100.0, "instance_sleeping", "a", ["g0", "g1"]),
    {"t": 100.0, "kind": "requester_deleted", "requester": "r1"},
    inst(150.0, "instance_waking", "a", ["g0", "g1"]),
    inst(152.0, "instance_awake", "a", ["g0", "g1"]),
    {"t": 180.0, "kind": "node_lost", "node": "n1"},
]


def test_gpu_states_split_serving_loading_sleeping_idle_lost() -> None:
    series = gpu_states(EVENTS, 4, 200.0, {"n1": 2})
    at = series.at([5.0, 20.0, 60.0, 120.0, 151.0, 160.0, 190.0])
    assert at.values["loading"] == [0, 2, 0, 0, 2, 0, 0]
    assert at.values["serving"] == [0, 0, 2, 0, 0, 2, 2]
    assert at.values["sleeping"] == [0, 0, 0, 2, 0, 0, 0]
    assert at.values["lost"] == [0, 0, 0, 0, 0, 0, 2]
    assert at.values["idle"] == [4, 2, 2, 2, 2, 2, 0]


def test_gpu_hours_and_held() -> None:
    hours = gpu_hours(EVENTS, 4, 200.0)
    assert hours["loading"] == pytest.approx(2 * (40 + 2) / 3600, abs=1e-3)
    assert hours["sleeping"] == pytest.approx(2 * 50 / 3600, abs=1e-3)
    assert hours["serving"] == pytest.approx(2 * (50 + 48) / 3600, abs=1e-3)
    assert held_gpu_seconds(EVENTS, 200.0) == pytest.approx(2 * 100)


def test_waiting_splits_for_gpus_and_actuating() -> None:
    series = waiting_requesters(EVENTS, 200.0).at([5.0, 55.0, 70.0])
    assert series.values["actuating"] == [1, 0, 0]
    assert series.values["for GPUs"] == [0, 0, 1]


def test_waits_censor_the_still_waiting() -> None:
    assert waits_s(EVENTS, 200.0) == [50.0, 140.0]


def test_bucket_means_average_over_time() -> None:
    series = Series([0.0, 30.0, 90.0], {"x": [0.0, 6.0, 0.0]})
    means = series.bucket_means(120.0, 2)
    assert means.t == [30.0, 90.0]
    assert means.values["x"] == pytest.approx([3.0, 3.0])
    assert series.integral("x", 120.0) == pytest.approx(360.0)


def test_actuation_counts_per_bucket_and_path() -> None:
    events = [
        {"t": t, "kind": "actuation", "path": p}
        for t, p in [(1, "hot"), (2, "cold"), (70, "hot"), (119, "warm")]
    ]
    counts = actuation_counts(events, 120.0, buckets=2)
    assert counts.values["hot"] == [1, 1]
    assert counts.values["cold"] == [1, 0]
    assert counts.values["warm"] == [0, 1]


def test_lost_node_sizes_from_the_inventory_and_comes_back() -> None:
    events = [
        {"t": 0.0, "kind": "node_added", "node": "n1", "gpus": ["g0", "g1"]},
        {"t": 0.0, "kind": "node_added", "node": "n2", "gpus": ["g2", "g3"]},
        inst(1.0, "instance_awake", "a", ["g0"]),
        {"t": 10.0, "kind": "node_lost", "node": "n1"},
        {"t": 20.0, "kind": "node_restored", "node": "n1"},
    ]
    at = gpu_states(events, 4, 30.0).at([5.0, 15.0, 25.0])
    assert at.values["lost"] == [0, 2, 0]
    assert at.values["serving"] == [1, 0, 0]  # the instance went with its node
    assert at.values["idle"] == [3, 2, 4]
