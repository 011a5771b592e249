"""The scenario matrix of the dual-pods design, decided by the core.

Factors: scale out (another replica of the same spec already serves) vs create; 1 vs 2 GPUs;
the path (hot, direct-cold, warm, launcher-cold); 0 / 1 / several instances to reclaim; and
0 / 1 / several launchers to reclaim (unbound launchers from a stale template, which the
population replaces). Each case builds the node, plans until the requester is placed and its
instance is about to start or wake, and checks the path and exactly what was reclaimed.
"""

from dataclasses import replace
from typing import NamedTuple

import pytest

from fma.core.actions import (
    Bind,
    CreateDirectProvider,
    CreateInstance,
    CreateLauncher,
    DeleteInstance,
    DeleteProvider,
    Plan,
    WakeInstance,
)
from fma.core.dualpods import plan_node
from fma.core.identity import instance_id
from fma.core.model import (
    ActuationPath,
    InstanceState,
    IscSpec,
    LauncherConfigSpec,
    NodeSnapshot,
    Provider,
    ProviderKind,
)
from fma.core.policy import Actuation, Policy
from tests.builders import instance, node, provider, requester, spec, steady

GPUS = {1: ("GPU-0",), 2: ("GPU-0", "GPU-1")}
TEMPLATE = "t2"
WANTED = {
    n: spec("wanted", weights_gib=70 * n, port=8000, gpu_memory_utilization=0.97) for n in (1, 2)
}
"""Claims 77.6 GiB of each 80 GiB GPU: one sleeper's 1.5 GiB residue fits beside it, two do not."""


class Case(NamedTuple):
    trigger: str
    gpus: int
    path: str
    instances: int
    launchers: int


def feasible() -> list[Case]:
    cases = []
    for trigger in ("scale-out", "create"):
        for gpus in (1, 2):
            for path in ("hot", "direct-cold", "warm", "launcher-cold"):
                for instances in (0, 1, 3):
                    for launchers in (0, 1, 3):
                        if path == "direct-cold" and launchers:
                            continue  # the direct path has no launchers to reclaim
                        cases.append(Case(trigger, gpus, path, instances, launchers))
    return cases


def _launcher(
    name: str, *instances_: object, bound_to: str | None = None, template: str = TEMPLATE
) -> Provider:
    return Provider(
        name,
        "n1",
        ProviderKind.LAUNCHER,
        0.0,
        tuple(instances_),  # type: ignore[arg-type]
        bound_requester_uid=bound_to,
        launcher_config="lc",
        template_hash=template,
    )


def arrange(case: Case) -> tuple[NodeSnapshot, Policy]:
    """The node before the requester is placed, shaped so the case's path and reclaims follow."""
    gpus = GPUS[case.gpus]
    launcher_path = case.path != "direct-cold"
    # The wanted engine claims nearly all of its GPUs, so each sleeper beyond one on them must
    # go (memory).
    wanted = WANTED[case.gpus]
    evictable = [
        instance(s=spec(f"other-{k}", weights_gib=1, port=9000 + k), gpus=gpus, last_used_s=k)
        for k in range(case.instances + (1 if case.instances else 0))
    ]
    providers: list[Provider] = []
    max_instances = 2
    if case.path == "hot":
        target = instance(s=wanted, gpus=gpus, last_used_s=100)
        providers.append(_launcher("L-hot", target))
        providers += [_launcher(f"L-sleeper-{k}", e) for k, e in enumerate(evictable)]
    elif case.path == "warm":
        # A full launcher: `instances` of its sleepers go to make a slot (the cap was lowered).
        full = (
            [
                instance(
                    s=spec(f"slot-{k}", weights_gib=1, port=9100 + k),
                    gpus=("GPU-7",),
                    last_used_s=k,
                )
                for k in range(case.instances + 1)
            ]
            if case.instances
            else []
        )
        max_instances = len(full) - case.instances + 1 if full else 2
        providers.append(_launcher("L-warm", *full))
    elif case.path == "launcher-cold":
        # No usable launcher on the node; the sleepers in the way are direct ones.
        providers += [provider(f"D-sleeper-{k}", inst=e) for k, e in enumerate(evictable)]
    else:
        providers += [provider(f"D-sleeper-{k}", inst=e) for k, e in enumerate(evictable)]
    providers += [_launcher(f"L-stale-{k}", template="t1") for k in range(case.launchers)]
    if case.trigger == "scale-out":
        other_gpus = ("GPU-6",) if case.gpus == 1 else ("GPU-5", "GPU-6")
        serving = instance(s=wanted, gpus=other_gpus, state=InstanceState.AWAKE)
        kind = ProviderKind.LAUNCHER if launcher_path else ProviderKind.DIRECT
        serving_provider = Provider(
            "serving",
            "n1",
            kind,
            0.0,
            (serving,),
            bound_requester_uid="r0",
            bound_instance_id=serving.instance_id,
            path=ActuationPath.COLD,
            launcher_config="lc" if launcher_path else None,
            template_hash=TEMPLATE if launcher_path else None,
        )
        r0 = requester("r0", gpus=("GPU-6",), ready=True, actuated=True, started_s=0.0)
        r0, serving_provider = steady(r0, serving_provider)
        providers.append(serving_provider)
    r = requester(
        "r1",
        gpus=gpus,
        spec=None if launcher_path else wanted,
        isc_name="isc" if launcher_path else None,
        started_s=1.0,
    )
    others = (r0,) if case.trigger == "scale-out" else ()
    snap = NodeSnapshot(
        "n1",
        node(gpus=8),
        (*others, r),
        tuple(providers),
        {"isc": IscSpec("isc", wanted, "lc")},
        {"lc": LauncherConfigSpec("lc", max_instances, TEMPLATE)},
    )
    actuation = Actuation.FMA if launcher_path else Actuation.DIRECT_SLEEP
    return snap, Policy(actuation=actuation)


def settle(snap: NodeSnapshot, policy: Policy) -> list[Plan]:
    """Plan, apply the plan's bookkeeping to the snapshot, and plan again until the instance is
    about to be created or woken (at most a few passes)."""
    plans = []
    for _ in range(4):
        plan = plan_node(snap, now_s=10.0, policy=policy)
        plans.append(plan)
        if any(
            isinstance(a, CreateInstance | WakeInstance | CreateDirectProvider)
            for a in plan.actions
        ):
            return plans
        snap = apply(snap, plan)
    return plans


def apply(snap: NodeSnapshot, plan: Plan) -> NodeSnapshot:
    """What the cluster would look like once ``plan`` is done (only what these cases need)."""
    providers = {p.name: p for p in snap.providers}
    for a in plan.actions:
        if isinstance(a, DeleteProvider):
            providers.pop(a.provider, None)
        elif isinstance(a, DeleteInstance) and a.provider in providers:
            p = providers[a.provider]
            providers[a.provider] = replace(
                p, instances=tuple(i for i in p.instances if i.instance_id != a.instance_id)
            )
        elif isinstance(a, Bind):
            providers[a.provider] = replace(
                providers[a.provider],
                bound_requester_uid=a.requester_uid,
                bound_instance_id=a.instance_id,
                path=a.path,
                bound_s=10.0,
            )
        elif isinstance(a, CreateLauncher) and a.requester_uid:
            providers["L-new"] = Provider(
                "L-new",
                "n1",
                ProviderKind.LAUNCHER,
                10.0,
                bound_requester_uid=a.requester_uid,
                bound_instance_id=a.instance_id,
                path=a.path,
                bound_s=10.0,
                launcher_config=a.launcher_config,
                template_hash=a.template_hash,
            )
    return replace(snap, providers=tuple(providers.values()))


EXPECTED_PATH = {
    "hot": ActuationPath.HOT,
    "direct-cold": ActuationPath.COLD,
    "warm": ActuationPath.WARM,
    "launcher-cold": ActuationPath.COLD_LAUNCHER,
}


@pytest.mark.parametrize("case", feasible(), ids=lambda c: "-".join(map(str, c)))
def test_actuation_matrix(case: Case) -> None:
    snap, policy = arrange(case)
    plans = settle(snap, policy)
    actions = [a for p in plans for a in p.actions]
    placed = [
        a
        for a in actions
        if isinstance(a, Bind | CreateLauncher | CreateDirectProvider)
        and getattr(a, "requester_uid", None) == "r1"
    ]
    assert len(placed) == 1, actions
    assert placed[0].path is EXPECTED_PATH[case.path]
    reclaimed = [
        a
        for a in actions
        if isinstance(a, DeleteInstance | DeleteProvider)
        and a.reason.startswith(("evicted", "reclaimed"))
    ]
    assert len(reclaimed) == case.instances, actions
    stale = {
        a.provider
        for a in actions
        if isinstance(a, DeleteProvider) and a.provider.startswith("L-stale")
    }
    assert len(stale) == case.launchers
    assert all(getattr(a, "provider", None) != "serving" for a in actions)
    target = instance_id(WANTED[case.gpus], GPUS[case.gpus])
    started = [
        a for a in actions if isinstance(a, CreateInstance | WakeInstance | CreateDirectProvider)
    ]
    assert [a.instance_id for a in started] == [target]
