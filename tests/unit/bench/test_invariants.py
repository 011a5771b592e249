"""Each trace checker catches its breach and stays quiet on a healthy trace."""

from typing import Any

from fma.bench import invariants as inv

GIB = 1024**3


def ev(t: float, kind: str, **ids: Any) -> dict[str, Any]:
    return {"t": t, "kind": kind, **ids}


NODE = ev(
    0,
    "node_added",
    node="n",
    pool="p",
    gpus=["g0", "g1"],
    gpu_memory_bytes=80 * GIB,
    host_memory_bytes=100 * GIB,
    launchers_wanted=1,
)
MODEL = ev(0, "model_added", model="m", bytes=16 * GIB, gpus=1)


def inst(t: float, kind: str, provider: str, gpus: list[str], gib: float, **extra: Any) -> Any:
    return ev(
        t,
        kind,
        provider=provider,
        instance=f"{provider}-i",
        node="n",
        gpus=gpus,
        bytes=int(gib * GIB),
        **extra,
    )


def served(uid: str, provider: str, gpus: list[str], t: float) -> list[dict[str, Any]]:
    """A requester scheduled, bound, its instance started and ready, from ``t`` on."""
    return [
        ev(t, "requester_created", requester=uid, model="m"),
        ev(t, "requester_scheduled", requester=uid, node="n", gpus=gpus),
        ev(t + 1, "requester_started", requester=uid),
        ev(t + 1, "provider_created", provider=provider, node="n", provider_kind="direct"),
        ev(t + 1, "bind", provider=provider, requester=uid, instance=f"{provider}-i", path="cold"),
        inst(t + 1, "instance_starting", provider, gpus, 16),
        inst(t + 30, "instance_awake", provider, gpus, 16),
        ev(t + 30, "ready", requester=uid),
    ]


def released(uid: str, provider: str, gpus: list[str], t: float) -> list[dict[str, Any]]:
    return [
        ev(t, "requester_deleting", requester=uid, reason="scaled down"),
        inst(t + 1, "instance_sleeping", provider, gpus, 16),
        ev(t + 1, "unbind", provider=provider, requester=uid),
        ev(t + 1, "requester_deleted", requester=uid),
    ]


HEALTHY = [
    NODE,
    MODEL,
    ev(0, "faults_off", bound_s=100.0),
    *served("r1", "p1", ["g0"], 10),
    *served("r2", "p2", ["g1"], 10),
    *released("r1", "p1", ["g0"], 100),
    *released("r2", "p2", ["g1"], 100),
    ev(200, "quiescent"),
]


def names(violations: list[dict[str, Any]]) -> list[str]:
    return [v["invariant"] for v in violations]


def test_a_healthy_trace_breaks_nothing() -> None:
    assert inv.check_all(HEALTHY) == []


def test_two_awake_instances_on_one_gpu() -> None:
    trace = [
        NODE,
        inst(1, "instance_awake", "a", ["g0"], 10),
        inst(2, "instance_waking", "b", ["g0"], 10),
    ]
    assert names(inv.gpu_exclusive_awake(trace)) == ["gpu_exclusive_awake"]


def test_awake_weights_beyond_gpu_memory() -> None:
    trace = [NODE, inst(1, "instance_starting", "a", ["g0"], 90)]
    assert names(inv.gpu_memory_fits(trace)) == ["gpu_memory_fits"]
    split = [NODE, inst(1, "instance_starting", "a", ["g0", "g1"], 90)]
    assert inv.gpu_memory_fits(split) == []  # 45 GiB on each


def test_memory_is_freed_when_an_instance_sleeps_stops_or_goes() -> None:
    for gone in ("instance_sleeping", "instance_stopped", "instance_deleted"):
        trace = [
            NODE,
            inst(1, "instance_awake", "a", ["g0"], 60),
            inst(2, gone, "a", ["g0"], 60),
            inst(3, "instance_starting", "b", ["g0"], 60),
        ]
        assert inv.gpu_memory_fits(trace) == [], gone


def test_two_requesters_on_one_gpu() -> None:
    trace = [
        ev(1, "requester_scheduled", requester="r1", node="n", gpus=["g0"]),
        ev(2, "requester_scheduled", requester="r2", node="n", gpus=["g0"]),
    ]
    assert names(inv.gpu_single_requester(trace)) == ["gpu_single_requester"]


def test_a_requester_bound_twice() -> None:
    trace = [
        *served("r1", "p1", ["g0"], 0),
        ev(50, "provider_created", provider="p2", node="n", provider_kind="direct"),
        ev(50, "bind", provider="p2", requester="r1", instance="p2-i", path="cold"),
    ]
    assert names(inv.one_provider_per_requester(trace)) == ["one_provider_per_requester"]


def test_a_provider_bound_to_two_requesters() -> None:
    trace = [
        *served("r1", "p1", ["g0"], 0),
        ev(50, "requester_scheduled", requester="r2", node="n", gpus=["g1"]),
        ev(50, "bind", provider="p1", requester="r2", instance="p1-i", path="hot"),
    ]
    assert names(inv.one_provider_per_requester(trace)) == ["one_requester_per_provider"]


def test_a_provider_on_another_node() -> None:
    trace = [
        ev(0, "requester_scheduled", requester="r1", node="n", gpus=["g0"]),
        ev(1, "provider_created", provider="p1", node="elsewhere", provider_kind="direct"),
        ev(1, "bind", provider="p1", requester="r1", instance="p1-i", path="cold"),
    ]
    assert names(inv.one_provider_per_requester(trace)) == ["provider_on_requester_node"]


def test_a_provider_running_other_gpus_than_its_requester_holds() -> None:
    trace = [
        ev(0, "requester_scheduled", requester="r1", node="n", gpus=["g0"]),
        ev(1, "provider_created", provider="p1", node="n", provider_kind="direct"),
        ev(1, "bind", provider="p1", requester="r1", instance="p1-i", path="cold"),
        inst(1, "instance_starting", "p1", ["g1"], 16),
    ]
    assert names(inv.one_provider_per_requester(trace)) == ["provider_runs_requester_gpus"]


def test_sleepers_beyond_host_memory() -> None:
    trace = [
        NODE,
        inst(1, "instance_sleeping", "a", ["g0"], 60),
        inst(2, "instance_sleeping", "b", ["g1"], 60),
    ]
    assert names(inv.host_memory_fits(trace)) == ["host_memory_fits"]
    woken = [*trace[:2], inst(2, "instance_waking", "a", ["g0"], 60), trace[2]]
    assert inv.host_memory_fits(woken) == []


def test_a_requester_never_ready_after_faults_is_a_liveness_breach() -> None:
    trace = [
        NODE,
        MODEL,
        ev(100, "faults_off", bound_s=50.0),
        ev(0, "requester_created", requester="r1", model="m"),
        ev(10, "requester_scheduled", requester="r1", node="n", gpus=["g0"]),
        ev(400, "unrelated"),
    ]
    (breach,) = inv.liveness(trace)
    assert (breach["invariant"], breach["requester"], breach["t"]) == ("liveness", "r1", 150.0)


def test_liveness_is_not_judged_past_the_end_of_the_trace() -> None:
    trace = [
        ev(100, "faults_off", bound_s=50.0),
        ev(120, "requester_scheduled", requester="r1", node="n", gpus=["g0"]),
        ev(160, "unrelated"),
    ]
    assert inv.liveness(trace) == []


def test_a_late_ready_and_a_stuck_deletion_are_breaches() -> None:
    trace = [
        ev(0, "faults_off", bound_s=50.0),
        ev(10, "requester_scheduled", requester="r1", node="n", gpus=["g0"]),
        ev(90, "ready", requester="r1"),
        ev(100, "requester_deleting", requester="r1", reason="scaled down"),
        ev(300, "unrelated"),
    ]
    assert [v["expected"] for v in inv.liveness(trace)] == ["requester_ready", "requester_deleted"]


def test_a_model_that_cannot_fit_may_fail_with_a_status_instead() -> None:
    big = ev(0, "model_added", model="huge", bytes=200 * GIB, gpus=1)
    trace = [
        NODE,
        big,
        ev(0, "faults_off", bound_s=50.0),
        ev(1, "requester_created", requester="r1", model="huge"),
        ev(1, "requester_scheduled", requester="r1", node="n", gpus=["g0"]),
        ev(5, "status", requester="r1", errors=["does not fit"]),
        ev(300, "unrelated"),
    ]
    assert inv.liveness(trace) == []
    fits = [*trace[:3], ev(1, "requester_created", requester="r1", model="m"), *trace[4:]]
    fits[1] = MODEL
    assert names(inv.liveness(fits)) == ["liveness"]


def test_leaks_once_quiet() -> None:
    trace = [
        NODE,
        MODEL,
        *served("r1", "p1", ["g0"], 0),
        ev(50, "provider_created", provider="l1", node="n", provider_kind="launcher"),
        ev(50, "provider_created", provider="l2", node="n", provider_kind="launcher"),
        ev(60, "provider_created", provider="p3", node="n", provider_kind="direct"),
        ev(100, "quiescent"),
    ]
    found = inv.nothing_leaked(trace)
    assert {v.get("requester") or v.get("provider") or v.get("node") for v in found} == {
        "r1",
        "p1",
        "p3",
        "n",
    }


def test_no_leak_judgement_without_quiescence() -> None:
    assert inv.nothing_leaked([*served("r1", "p1", ["g0"], 0)]) == []


def test_ready_while_the_bound_instance_sleeps() -> None:
    trace = [
        ev(0, "requester_scheduled", requester="r1", node="n", gpus=["g0"]),
        ev(1, "provider_created", provider="p1", node="n", provider_kind="direct"),
        inst(1, "instance_sleeping", "p1", ["g0"], 16),
        ev(2, "bind", provider="p1", requester="r1", instance="p1-i", path="hot"),
        ev(3, "ready", requester="r1"),
    ]
    assert names(inv.ready_only_when_awake(trace)) == ["ready_only_when_awake"]
    woken = [*trace[:4], inst(2.5, "instance_awake", "p1", ["g0"], 16), trace[4]]
    assert inv.ready_only_when_awake(woken) == []
