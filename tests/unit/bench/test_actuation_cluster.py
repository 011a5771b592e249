"""Evidence from a namespace's Pods (as listed and watched), the operator's records and the
engines' logs, without a cluster: Pods written as the API server returns them."""

import time
from typing import Any

import pytest

from fma.adapters.k8s.actuations import PodTimes
from fma.api.constants import (
    ANN_ACCELERATORS,
    ANN_ACTUATED,
    ANN_ACTUATION_PATH,
    ANN_BOUND_AT,
    ANN_INFERENCE_SERVER_CONFIG,
    ANN_INSTANCE_ID,
    ANN_REQUESTER,
    LABEL_DUAL,
    LABEL_INSTANCE,
    LABEL_LAUNCHER_CONFIG_NAME,
)
from fma.bench.actuation.classify import ActuationCondition as C
from fma.bench.actuation.classify import classify
from fma.bench.actuation.cluster import Observation, ready_before
from fma.bench.actuation.evidence import Evidence
from fma.launcher.vllm_lines import start_line, wake_line

Obj = dict[str, Any]
T0 = 1_800_000_000.0


def stamp(offset_s: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(T0 + offset_s))


def ready(offset_s: float | None) -> list[Obj]:
    if offset_s is None:
        return [{"type": "Ready", "status": "False", "lastTransitionTime": stamp(0)}]
    return [{"type": "Ready", "status": "True", "lastTransitionTime": stamp(offset_s)}]


def requester(
    name: str, created: float, ready_at: float | None, provider: str | None, instance: str = "i-1"
) -> Obj:
    labels = {"app": "rs"}
    if provider is not None:
        labels |= {LABEL_DUAL: provider, LABEL_INSTANCE: instance}
    return {
        "metadata": {
            "name": name,
            "uid": f"uid-{name}",
            "creationTimestamp": stamp(created),
            "labels": labels,
            "annotations": {ANN_INFERENCE_SERVER_CONFIG: "isc", ANN_ACCELERATORS: "GPU-0"},
        },
        "spec": {"nodeName": "n0", "containers": [{"name": "inference-server"}]},
        "status": {"conditions": ready(ready_at)},
    }


def launcher(
    name: str,
    created: float,
    ready_at: float | None,
    bound_to: str | None = None,
    bound_at: float | None = None,
    instance: str = "i-1",
    path: str = "warm",
) -> Obj:
    annotations: dict[str, str] = {}
    if bound_to is not None and bound_at is not None:
        bound_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(T0 + bound_at))
        fraction = f"{(T0 + bound_at) % 1:.6f}"[1:]
        annotations = {
            ANN_REQUESTER: f"uid-{bound_to} {bound_to}",
            ANN_BOUND_AT: f"{bound_text}{fraction}Z",
            ANN_INSTANCE_ID: instance,
            ANN_ACTUATION_PATH: path,
        }
    return {
        "metadata": {
            "name": name,
            "uid": f"uid-{name}",
            "creationTimestamp": stamp(created),
            "labels": {LABEL_LAUNCHER_CONFIG_NAME: "lc"},
            "annotations": annotations,
        },
        "spec": {"nodeName": "n0", "containers": [{"name": "inference-server"}]},
        "status": {"podIP": "127.0.0.1", "conditions": ready(ready_at)},
    }


def actuated(pod: Obj, path: str) -> Obj:
    pod["metadata"]["annotations"][ANN_ACTUATED] = f"{path} {stamp(99)}"
    return pod


def observe(*pods: Obj, logs: dict[str, str] | None = None) -> dict[str, Evidence]:
    seen = Observation("ns")
    for pod in pods:
        seen.see(pod)

    def engine_log(provider: Obj, instance: str) -> str | None:
        return (logs or {}).get(f"{provider['metadata']['name']}/{instance}")

    return {e.requester_name or "": e for e in seen.evidence(engine_log=engine_log)}


def log_of(*lines: str) -> str:
    return "".join(line + "\n" for line in lines)


def test_a_launcher_ready_long_before_is_warm() -> None:
    found = observe(
        launcher("l1", -300, -290, bound_to="a", bound_at=2.4),
        actuated(requester("a", 0, 12, "l1"), "warm"),
        logs={"l1/i-1": log_of(start_line({"port": 8005}, at_s=T0 + 3))},
    )
    a = found["a"]
    assert (a.provider, a.instance, a.bound_s) == ("l1", "i-1", T0 + 2.4)
    assert a.launcher_ready_before_bind is True
    assert a.instance_started_s == T0 + 3  # the engine's start marker, in the window
    assert a.controller_path == "warm"
    assert a.gpu_uuids == ("GPU-0",)
    assert classify(a).condition is C.T_WARM


def test_a_launcher_made_for_the_requester_is_cold_launcher() -> None:
    found = observe(
        requester("a", 0, 20, "l2"),
        launcher("l2", 1, 15, bound_to="a", bound_at=1.2, path="cold_launcher"),
        logs={"l2/i-1": log_of(start_line({"port": 8005}, at_s=T0 + 16))},
    )
    assert found["a"].launcher_ready_before_bind is False
    assert classify(found["a"]).condition is C.T_COLD_LAUNCHER


def test_a_wake_in_the_window_of_the_bound_instance_is_hot() -> None:
    # Two instances in one launcher: only the bound one's log counts.
    logs = {
        "l1/i-1": log_of(start_line({}, at_s=T0 - 200), wake_line(0.3, at_s=T0 + 4)),
        "l1/i-2": log_of(start_line({}, at_s=T0 - 100)),
    }
    found = observe(
        launcher("l1", -300, -290, bound_to="a", bound_at=3, instance="i-1", path="hot"),
        requester("a", 0, 5, "l1", instance="i-1"),
        logs=logs,
    )
    assert found["a"].wake_started_s == pytest.approx(T0 + 3.7)
    assert classify(found["a"]).condition is C.T_HOT

    logs = {
        "l1/i-1": log_of(start_line({}, at_s=T0 - 200), wake_line(0.3, at_s=T0 + 4)),
        "l1/i-2": log_of(start_line({}, at_s=T0 + 3)),
    }
    found = observe(
        launcher("l1", -300, -290, bound_to="b", bound_at=2, instance="i-2"),
        requester("b", 0, 5, "l1", instance="i-2"),
        logs=logs,
    )
    assert found["b"].wake_started_s is None
    assert classify(found["b"]).condition is C.T_WARM


def test_a_wake_before_the_requester_existed_is_not_its_wake() -> None:
    logs = {"l1/i-1": log_of(wake_line(0.2, at_s=T0 - 50), start_line({}, at_s=T0 + 2))}
    found = observe(
        launcher("l1", -300, -290, bound_to="a", bound_at=1.5),
        requester("a", 0, 6, "l1"),
        logs=logs,
    )
    assert classify(found["a"]).condition is C.T_WARM


def test_an_unreadable_engine_log_leaves_hot_and_warm_undecided() -> None:
    found = observe(
        launcher("l1", -300, -290, bound_to="a", bound_at=1.5), requester("a", 0, 6, "l1")
    )
    assert classify(found["a"]).condition is None
    assert found["a"].problems == ("the log of instance i-1 is unread",)


def test_several_launchers_on_a_node_and_one_without_instances() -> None:
    found = observe(
        launcher("l1", -300, -290, bound_to="a", bound_at=2),
        launcher("l-idle", -300, -290),  # never bound: no entry
        launcher("l2", 1, 9, bound_to="b", bound_at=1.3, path="cold_launcher"),
        requester("a", 0, 10, "l1"),
        requester("b", 0, 15, "l2"),
        logs={
            "l1/i-1": log_of(start_line({}, at_s=T0 + 3)),
            "l2/i-1": log_of(start_line({}, at_s=T0 + 10)),
        },
    )
    assert set(found) == {"a", "b"}
    assert classify(found["a"]).condition is C.T_WARM
    assert classify(found["b"]).condition is C.T_COLD_LAUNCHER


def test_a_requester_seen_deleted_keeps_its_first_readiness_and_binding() -> None:
    seen = Observation("ns")
    first = actuated(requester("a", 0, 12, "l1"), "warm")
    seen.see(launcher("l1", -300, -290, bound_to="a", bound_at=2))
    seen.see(first)
    later = actuated(requester("a", 0, 40, "l1"), "warm")  # ready again later
    seen.see(later)
    seen.see(launcher("l1", -300, -290, bound_to="a", bound_at=50, path="hot"))  # rebound
    seen.see(launcher("l1", -300, -290))  # unbound, then the requester is gone
    (e,) = seen.evidence()
    assert (e.ready_s, e.bound_s, e.controller_path) == (T0 + 12, T0 + 2, "warm")
    assert seen.ready_count() == 1


def test_a_requester_never_ready_is_reported() -> None:
    found = observe(
        launcher("l1", -300, -290, bound_to="a", bound_at=2),
        requester("a", 0, None, "l1"),
        requester("b", 0, 9, "l2"),
        launcher("l2", -300, -290, bound_to="b", bound_at=3),
        logs={"l1/i-1": log_of(start_line({}, at_s=T0 + 3)), "l2/i-1": ""},
    )
    assert found["a"].ready_s is None
    assert classify(found["a"]).condition is C.T_WARM
    assert found["b"].ready_s == T0 + 9


def test_the_operators_record_takes_the_place_of_the_engine_log() -> None:
    seen = Observation("ns")
    seen.see(launcher("l1", -300, -290, bound_to="a", bound_at=3, path="hot"))
    seen.see(requester("a", 0, 5, "l1"))
    record = {
        "requester": "uid-a",
        "bound_t": T0 + 3.1,
        "provider_ready_t": T0 - 290,
        "wake_start_t": T0 + 3.2,
        "wake_end_t": T0 + 3.6,
        "relay_t": T0 + 3.7,
    }
    (e,) = seen.evidence(records={"uid-a": record}, engine_log=lambda *_: None)
    assert (e.wake_started_s, e.relayed_s, e.bound_s) == (T0 + 3.2, T0 + 3.7, T0 + 3.1)
    assert e.wake_evidence and not e.problems
    assert classify(e).condition is C.T_HOT


def test_missing_timestamps_give_no_verdict() -> None:
    pod = launcher("l1", -300, -290, bound_to="a", bound_at=2)
    del pod["metadata"]["creationTimestamp"]
    found = observe(
        pod, requester("a", 0, 8, "l1"), logs={"l1/i-1": log_of(start_line({}, at_s=T0 + 3))}
    )
    assert found["a"].provider_created_s is None
    assert "creation time is unknown" in classify(found["a"]).why


@pytest.mark.parametrize(
    ("ready_at", "bound_at", "expected"),
    [
        (10.0, 12.5, True),  # a whole second before
        (12.0, 12.5, None),  # the same second: Ready at 12.0 .. 12.999
        (13.0, 12.5, False),  # after
        (None, 12.5, False),  # not Ready
        (10.0, None, None),  # no binding time
    ],
)
def test_readiness_before_the_binding_at_one_second_resolution(
    ready_at: float | None, bound_at: float | None, expected: bool | None
) -> None:
    times = PodTimes(
        created_s=0.0, ready_s=ready_at, started_s=None, node=None, first_container=None
    )
    assert ready_before(times, bound_at) is expected
