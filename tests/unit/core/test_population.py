"""Launcher population decisions and policy evaluation."""

from dataclasses import replace

import pytest

from fma.core.actions import CreateLauncher, DeleteProvider, Unbind
from fma.core.dualpods import plan_node
from fma.core.model import (
    ActuationPath,
    InstanceState,
    IscSpec,
    LauncherConfigSpec,
    NodeSnapshot,
    Provider,
    ProviderKind,
)
from fma.core.policy import Policy
from fma.core.population import (
    PopulationPolicy,
    SelectorRequirement,
    plan_population,
    policy_counts,
)
from tests.builders import instance, node, requester, snapshot, spec

LC = LauncherConfigSpec("lc", 2, "t2")


def launcher(
    name: str,
    *,
    template: str = "t2",
    bound: bool = False,
    sleepers: int = 0,
    last_used_s: float = 0.0,
    ready: bool = True,
    created_s: float = 0.0,
) -> Provider:
    insts = tuple(
        instance(gpus=(f"GPU-{k}",), last_used_s=last_used_s, state=InstanceState.SLEEPING)
        for k in range(sleepers)
    )
    return Provider(
        name,
        "n1",
        ProviderKind.LAUNCHER,
        created_s,
        insts,
        bound_requester_uid="r" if bound else None,
        launcher_config="lc",
        template_hash=template,
        ready=ready,
    )


def plan(
    *launchers: Provider,
    want: int = 0,
    lc: LauncherConfigSpec | None = LC,
    n: object = None,
    policy: Policy | None = None,
    now_s: float = 0.0,
) -> list[object]:
    snap = NodeSnapshot(
        "n1", n or node(), (), launchers, {}, {"lc": lc} if lc else {}, {"lc": want} if want else {}
    )
    return list(plan_population(snap, claimed=(), now_s=now_s, policy=policy or Policy()).actions)


def test_creates_up_to_the_policy_count() -> None:
    assert plan(launcher("a"), want=3) == [CreateLauncher("n1", "lc", "t2")] * 2


def test_bound_launchers_count_and_are_never_touched() -> None:
    assert plan(launcher("a", bound=True), launcher("b", bound=True), want=1) == []


def test_idle_surplus_is_removed_least_recently_used_first() -> None:
    actions = plan(launcher("new", created_s=50), launcher("old", created_s=10), want=1)
    assert actions == [DeleteProvider("old", "surplus launcher")]


def test_launchers_holding_sleepers_are_kept_by_default() -> None:
    assert plan(launcher("a", sleepers=1), launcher("b", sleepers=2), want=0) == []


def test_without_keeping_sleepers_the_fewest_sleepers_go_first() -> None:
    actions = plan(
        launcher("a", sleepers=2),
        launcher("b", sleepers=1),
        launcher("c"),
        want=1,
        policy=Policy(keep_launchers_with_sleepers=False),
    )
    assert actions == [
        DeleteProvider("c", "surplus launcher"),
        DeleteProvider("b", "surplus launcher"),
    ]


def test_stale_template_is_replaced_when_unbound_only() -> None:
    actions = plan(
        launcher("stale", template="t1"), launcher("busy", template="t1", bound=True), want=2
    )
    assert actions == [
        DeleteProvider("stale", "stale launcher template"),
        CreateLauncher("n1", "lc", "t2"),
    ]


@pytest.mark.parametrize(
    "lc", [None, replace(LC, problems=("bad template",))], ids=["missing", "malformed"]
)
def test_hands_off_while_the_launcher_config_is_missing_or_malformed(
    lc: LauncherConfigSpec | None,
) -> None:
    assert plan(launcher("stale", template="t1"), launcher("idle"), want=5, lc=lc) == []


@pytest.mark.parametrize(
    "n", [node(schedulable=False), node(ready=False)], ids=["cordoned", "not-ready"]
)
def test_no_new_launchers_on_cordoned_or_not_ready_nodes(n: object) -> None:
    assert plan(want=2, n=n) == []


def test_stuck_launcher_is_replaced() -> None:
    actions = plan(
        launcher("stuck", ready=False, created_s=0),
        want=1,
        now_s=3600,
        policy=Policy(ready_timeout_s=600),
    )
    assert actions == [
        DeleteProvider("stuck", "stuck: not ready in time"),
        CreateLauncher("n1", "lc", "t2"),
    ]


def test_a_launcher_released_by_the_plan_serves_the_replacement_of_its_requester() -> None:
    # r1's instance vanished and r1 is being deleted; its ReplicaSet's replacement r2 is on the
    # node, its GPUs not known yet. The plan that unbinds L must not make a launcher for r2
    # (the next pass would then remove L, Ready, as surplus, and bind r2 to the new one).
    lc, isc = LauncherConfigSpec("lc", 2, "t2"), IscSpec("isc", spec(), "lc")
    served = replace(
        launcher("L"),
        instances=(),
        bound_requester_uid="r1",
        bound_instance_id="I1i",
        path=ActuationPath.WARM,
        bound_s=1.0,
    )
    gone = requester("r1", isc_name="isc", deleting=True, actuated=True, finalizer=True)
    replacement = requester("r2", gpus=None, isc_name="isc", started_s=5.0)
    snap = snapshot(
        requesters=(gone, replacement),
        providers=(served,),
        iscs={"isc": isc},
        launcher_configs={"lc": lc},
        launcher_policy={"lc": 1},
    )
    actions = plan_node(snap, now_s=10.0, policy=Policy()).actions
    assert Unbind("L") in actions
    assert not [a for a in actions if isinstance(a, CreateLauncher | DeleteProvider)]
    # Told alone, the population counts a bound launcher as taken and makes one more.
    alone = plan_population(snap, claimed={"L"}, now_s=10.0, policy=Policy()).actions
    assert alone == (CreateLauncher("n1", "lc", "t2"),)
    freed = plan_population(snap, claimed={"L"}, released={"L"}, now_s=10.0, policy=Policy())
    assert freed.actions == ()


def test_policy_counts_take_the_max_over_selecting_policies() -> None:
    gpu_node = replace(node(), labels={"nvidia.com/gpu.present": "true", "zone": "a"})
    policies = [
        PopulationPolicy("p1", {"nvidia.com/gpu.present": "true"}, (), {}, {"lc": 1, "other": 3}),
        PopulationPolicy(
            "p2",
            {},
            (SelectorRequirement("zone", "In", ("a", "b")),),
            {"nvidia.com/gpu": (4, None)},
            {"lc": 2},
        ),
        PopulationPolicy("p3", {}, (SelectorRequirement("zone", "NotIn", ("a",)),), {}, {"lc": 9}),
        PopulationPolicy("p4", {}, (), {"example.com/fpga": (1, None)}, {"lc": 7}),
    ]
    assert policy_counts(policies, gpu_node, {"nvidia.com/gpu": 8}) == {"lc": 2, "other": 3}
    assert policy_counts(policies, gpu_node, {"nvidia.com/gpu": 2}) == {"lc": 1, "other": 3}
