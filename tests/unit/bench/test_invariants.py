"""Each trace checker catches its breach and stays quiet on a healthy trace."""

from typing import Any

from fma.bench import invariants as inv
from fma.core.reasons import REQUESTER_DELETIONS

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
    """Scaled down: readiness withdrawn, the engine put to sleep, then unbound and let go."""
    return [
        ev(t, "requester_deleting", requester=uid, reason="scaled down"),
        ev(t, "unready", requester=uid),
        inst(t, "instance_falling_asleep", provider, gpus, 16),
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
    woken = [*trace[:2], inst(2, "instance_awake", "a", ["g0"], 60), trace[2]]
    assert inv.host_memory_fits(woken) == []
    # A wake in progress still holds its host copy.
    waking = [*trace[:2], inst(2, "instance_waking", "a", ["g0"], 60), trace[2]]
    assert names(inv.host_memory_fits(waking)) == ["host_memory_fits"]


def test_host_memory_keeps_the_reserve_the_controller_promises() -> None:
    limits = ev(0, "limits", host_memory_reserve_fraction=0.2, sleeper_residue_bytes=0)
    trace = [NODE, limits, inst(1, "instance_sleeping", "a", ["g0"], 85)]
    assert names(inv.host_memory_fits(trace)) == ["host_memory_fits"]  # 85 > 80 of 100 GiB
    assert inv.host_memory_fits([NODE, trace[2]]) == []


def test_the_per_gpu_sleeping_budget() -> None:
    limits = ev(0, "limits", sleeping_bytes_per_gpu_max=20 * GIB)
    trace = [
        NODE,
        limits,
        inst(1, "instance_sleeping", "a", ["g0"], 12),
        inst(2, "instance_sleeping", "b", ["g0"], 12),
    ]
    assert names(inv.sleeping_budget_per_gpu(trace)) == ["sleeping_budget_per_gpu"]


def test_an_engine_claims_its_utilization_and_each_sleeper_its_residue() -> None:
    """At 0.9 of 80 GiB, an engine starting beside six 1.5 GiB residues overruns the GPU."""
    limits = ev(0, "limits", sleeper_residue_bytes=int(1.5 * GIB))
    sleepers = [inst(1, "instance_sleeping", f"s{k}", ["g0"], 1) for k in range(6)]
    start = inst(2, "instance_starting", "a", ["g0"], 8, utilization=0.9)
    assert names(inv.gpu_memory_fits([NODE, limits, *sleepers, start])) == ["gpu_memory_fits"]
    assert inv.gpu_memory_fits([NODE, limits, *sleepers[:5], start]) == []


def launcher_events(name: str, cap: int, t: float = 0) -> list[dict[str, Any]]:
    return [
        ev(
            t,
            "provider_created",
            provider=name,
            node="n",
            provider_kind="launcher",
            max_instances=cap,
        ),
        ev(t + 1, "launcher_ready", provider=name, node="n"),
    ]


def test_a_launcher_over_its_instance_cap() -> None:
    trace = [
        *launcher_events("L", 2),
        inst(2, "instance_sleeping", "L", ["g0"], 1, port=1) | {"instance": "i1"},
        inst(3, "instance_sleeping", "L", ["g1"], 1, port=2) | {"instance": "i2"},
        inst(4, "instance_starting", "L", ["g0"], 1, port=3) | {"instance": "i3"},
    ]
    assert names(inv.launcher_instance_cap(trace)) == ["launcher_instance_cap"]
    stopping = [*trace[:3], inst(3, "instance_stopping", "L", ["g1"], 1) | {"instance": "i2"}]
    assert inv.launcher_instance_cap([*stopping, trace[4]]) == []


def test_two_instances_of_one_launcher_on_one_port_a_stopping_one_included() -> None:
    trace = [
        *launcher_events("L", 4),
        inst(2, "instance_stopping", "L", ["g0"], 1, port=8000) | {"instance": "old"},
        inst(3, "instance_starting", "L", ["g1"], 1, port=8000) | {"instance": "new"},
    ]
    assert names(inv.launcher_ports_unique(trace)) == ["launcher_ports_unique"]
    gone = [*trace[:3], inst(2.5, "instance_deleted", "L", ["g0"], 1) | {"instance": "old"}]
    assert inv.launcher_ports_unique([*gone, trace[3]]) == []


def test_readiness_must_be_withdrawn_before_the_controller_sleeps_the_engine() -> None:
    trace = [
        *served("r1", "p1", ["g0"], 0),
        ev(50, "requester_deleting", requester="r1", reason="scaled down"),
        inst(50, "instance_falling_asleep", "p1", ["g0"], 16),
    ]
    (breach,) = inv.ready_only_when_awake(trace)
    assert breach["requester"] == "r1" and "falling_asleep" in breach["why"]


def test_readiness_must_be_withdrawn_within_the_grace_after_a_crash() -> None:
    limits = ev(0, "limits", grace_s=30.0)
    trace = [limits, *served("r1", "p1", ["g0"], 0), inst(50, "instance_stopped", "p1", ["g0"], 16)]
    assert inv.ready_only_when_awake(trace) == []  # not judged before the grace is over
    later = [*trace, ev(81, "unrelated")]
    assert names(inv.ready_only_when_awake(later)) == ["ready_only_when_awake"]
    withdrawn = [*trace, ev(60, "unready", requester="r1"), ev(81, "unrelated")]
    assert inv.ready_only_when_awake(withdrawn) == []


def test_a_requester_bound_to_a_crashed_instance_must_be_deleted_within_the_grace() -> None:
    limits = ev(0, "limits", grace_s=30.0)
    crashed = [
        limits,
        *served("r1", "p1", ["g0"], 0),
        inst(50, "instance_stopped", "p1", ["g0"], 16),
        ev(51, "unready", requester="r1"),
    ]
    assert inv.stopped_not_kept([*crashed, ev(79, "unrelated")]) == []
    (breach,) = inv.stopped_not_kept([*crashed, ev(81, "unrelated")])
    assert breach["requester"] == "r1" and breach["t"] == 80.0
    deleted = [*crashed, ev(60, "requester_deleting", requester="r1", reason="instance stopped")]
    assert inv.stopped_not_kept([*deleted, ev(200, "unrelated")]) == []


def test_the_grace_counts_only_while_the_controller_runs() -> None:
    limits = ev(0, "limits", grace_s=30.0)
    down = [limits, *served("r1", "p1", ["g0"], 0), ev(40, "controller_down")]
    crashed = [*down, inst(50, "instance_stopped", "p1", ["g0"], 16)]
    # Down from 40 to 500: the crash at 50 is owed a reaction from 500 on, until 530.
    back = [*crashed, ev(500, "controller_up")]
    assert inv.stopped_not_kept([*back, ev(529, "unrelated")]) == []
    assert inv.ready_only_when_awake([*back, ev(529, "unrelated")]) == []
    (breach,) = inv.stopped_not_kept([*back, ev(531, "unrelated")])
    assert breach["t"] == 530.0
    assert names(inv.ready_only_when_awake([*back, ev(531, "unrelated")])) == [
        "ready_only_when_awake"
    ]
    # A stretch the controller ran before it went down counts: 10 s up, then down, then 21.
    early = [limits, *served("r1", "p1", ["g0"], 0), inst(50, "instance_stopped", "p1", ["g0"], 16)]
    paused = [*early, ev(60, "controller_down"), ev(400, "controller_up")]
    assert inv.stopped_not_kept([*paused, ev(419, "unrelated")]) == []
    (breach,) = inv.stopped_not_kept([*paused, ev(421, "unrelated")])
    assert breach["t"] == 420.0


def test_routing_only_while_awake() -> None:
    trace = [
        *served("r1", "p1", ["g0"], 0),
        ev(40, "routing", provider="p1", instance="p1-i", on=True),
        ev(50, "unready", requester="r1"),
        inst(50, "instance_falling_asleep", "p1", ["g0"], 16),
    ]
    assert names(inv.routing_only_when_awake(trace)) == ["routing_only_when_awake"]
    off_first = [*trace[:-1], ev(50, "routing", provider="p1", on=False), trace[-1]]
    assert inv.routing_only_when_awake(off_first) == []


def test_a_hot_actuation_must_have_woken_a_sleeper() -> None:
    base = [
        ev(0, "requester_created", requester="r1", model="m"),
        ev(0, "requester_scheduled", requester="r1", node="n", gpus=["g0"]),
        *launcher_events("L", 4),
        inst(2, "instance_sleeping", "L", ["g0"], 16),
        ev(10, "bind", provider="L", requester="r1", instance="L-i", path="hot"),
    ]
    woken = [
        *base,
        inst(11, "instance_waking", "L", ["g0"], 16),
        ev(12, "actuation", requester="r1", path="hot"),
    ]
    assert inv.actuation_path_truthful(woken) == []
    started = [
        *base,
        inst(11, "instance_starting", "L", ["g0"], 16),
        ev(40, "actuation", requester="r1", path="hot"),
    ]
    (breach,) = inv.actuation_path_truthful(started)
    assert breach["happened"] == "warm"


def test_a_requester_deleted_by_the_controller_needs_a_true_cause() -> None:
    trace = [*served("r1", "p1", ["g0"], 0)]
    false = ev(
        50, "requester_deleting", requester="r1", reason="its instance stopped", by="controller"
    )
    assert names(inv.requester_deleted_with_cause([*trace, false])) == [
        "requester_deleted_with_cause"
    ]
    true = [*trace, inst(49, "instance_stopped", "p1", ["g0"], 16), false]
    assert inv.requester_deleted_with_cause(true) == []
    unknown = ev(50, "requester_deleting", requester="r1", reason="felt like it", by="controller")
    assert inv.requester_deleted_with_cause([*trace, unknown])[0]["why"] == "unknown cause"
    by_owner = ev(50, "requester_deleting", requester="r1", reason="scaled down")
    assert inv.requester_deleted_with_cause([*trace, by_owner]) == []


def test_the_checker_knows_every_cause_the_controller_gives() -> None:
    assert inv.KNOWN_CAUSES == REQUESTER_DELETIONS


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
