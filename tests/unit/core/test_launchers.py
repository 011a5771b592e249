"""Launcher-path placement and housekeeping decisions."""

from dataclasses import replace

from fma.core.actions import Bind, CreateLauncher, DeleteInstance, SetRequesterStatus, SleepInstance
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
from fma.core.policy import Policy
from fma.core.reasons import RECLAIMED
from tests.builders import essential, instance, node, requester, spec

WANTED = spec("wanted", port=8005)
LC = LauncherConfigSpec("lc", 2, "t")


def launcher(
    name: str, *insts: object, ready: bool = True, created_s: float = 0.0, **over: object
) -> Provider:
    p = Provider(
        name,
        "n1",
        ProviderKind.LAUNCHER,
        created_s,
        tuple(insts),  # type: ignore[arg-type]
        launcher_config="lc",
        template_hash="t",
        ready=ready,
    )
    return replace(p, **over)  # type: ignore[arg-type]


def snap(
    *providers: Provider, lc: LauncherConfigSpec | None = LC, isc: bool = True
) -> NodeSnapshot:
    r = requester("r1", spec=None, isc_name="isc")
    return NodeSnapshot(
        "n1",
        node(),
        (r,),
        providers,
        {"isc": IscSpec("isc", WANTED, "lc")} if isc else {},
        {"lc": lc} if lc else {},
    )


def placed(s: NodeSnapshot, now_s: float = 1.0) -> list[object]:
    return [
        a
        for a in plan_node(s, now_s=now_s, policy=Policy()).actions
        if isinstance(a, Bind | CreateLauncher | SetRequesterStatus | DeleteInstance)
    ]


def test_missing_isc_and_launcher_config_go_to_status() -> None:
    assert placed(snap(isc=False)) == [
        SetRequesterStatus("r1", ("InferenceServerConfig isc not found",))
    ]
    assert placed(snap(lc=None)) == [SetRequesterStatus("r1", ("LauncherConfig lc not found",))]
    assert placed(snap(lc=replace(LC, problems=("bad template",)))) == [
        SetRequesterStatus("r1", ("LauncherConfig lc is malformed",))
    ]


def test_hot_beats_warm() -> None:
    target = instance(s=WANTED, gpus=("GPU-0",))
    actions = placed(snap(launcher("empty"), launcher("holder", target)))
    assert actions == [Bind("holder", "r1", target.instance_id, ActuationPath.HOT)]


def test_port_conflict_needs_another_launcher() -> None:
    same_port = instance(s=spec("other", port=8005), gpus=("GPU-3",))
    (action,) = placed(snap(launcher("conflict", same_port), launcher("free")))
    assert (
        isinstance(action, Bind) and action.provider == "free" and action.path is ActuationPath.WARM
    )


def test_a_valuable_sleeper_on_the_port_is_kept_and_a_launcher_made_instead() -> None:
    """Reclaiming a sleeper for a port trades a likely hot start (tens of seconds) for one
    launcher start: the sleeper used a moment ago stays."""
    same_port = instance(s=spec("other", port=8005), gpus=("GPU-3",), last_used_s=0.0)
    actions = placed(snap(launcher("conflict", same_port)))
    assert not any(isinstance(a, DeleteInstance) for a in actions)
    (create,) = actions
    assert isinstance(create, CreateLauncher) and create.path is ActuationPath.COLD_LAUNCHER


def test_a_stale_sleeper_on_the_port_is_reclaimed() -> None:
    """Idle for a day, it is expected to save less than a launcher start costs."""
    same_port = instance(s=spec("other", port=8005), gpus=("GPU-3",), last_used_s=0.0)
    actions = placed(snap(launcher("conflict", same_port)), now_s=86_400.0)
    assert actions[0] == DeleteInstance("conflict", same_port.instance_id, RECLAIMED)
    assert isinstance(actions[1], Bind) and actions[1].path is ActuationPath.WARM


def test_without_room_for_a_launcher_even_a_valuable_sleeper_is_reclaimed() -> None:
    same_port = instance(s=spec("other", port=8005), gpus=("GPU-3",), last_used_s=0.0)
    full = plan_node(
        snap(launcher("conflict", same_port)), now_s=1.0, policy=Policy(launchers_per_node_max=1)
    )
    assert essential(full)[0] == DeleteInstance("conflict", same_port.instance_id, RECLAIMED)


def test_the_cap_is_reclaimed_in_upstreams_order_whatever_the_sleepers_are_worth() -> None:
    """Upstream's case 9: a full launcher makes room by deleting its least recently used
    sleeper rather than growing the node's launchers."""
    a = instance(s=spec("a", port=9001), gpus=("GPU-3",), last_used_s=5.0)
    b = instance(s=spec("b", port=9002), gpus=("GPU-4",), last_used_s=1.0)
    actions = placed(snap(launcher("full", a, b)))
    assert actions[0] == DeleteInstance("full", b.instance_id, RECLAIMED)
    assert isinstance(actions[1], Bind) and actions[1].provider == "full"


def test_a_starting_launcher_is_waited_for_rather_than_creating_another() -> None:
    plan = plan_node(snap(launcher("starting", ready=False)), now_s=1.0, policy=Policy())
    assert plan.actions == () and plan.requeue_after_s == Policy().retry_delay_s


def test_a_stuck_launcher_is_not_waited_for() -> None:
    actions = placed(snap(launcher("stuck", ready=False)), now_s=10_000.0)
    assert any(
        isinstance(a, CreateLauncher) and a.path is ActuationPath.COLD_LAUNCHER for a in actions
    )


def test_obsolete_sleepers_are_collected() -> None:
    old = instance(s=spec("wanted", port=8005, options=("--old",)), gpus=("GPU-2",), isc_name="isc")
    current = instance(s=WANTED, gpus=("GPU-3",), isc_name="isc")
    actions = placed(snap(launcher("L", old, current), launcher("free")))
    assert DeleteInstance("L", old.instance_id, "obsolete config") in actions
    assert not any(
        isinstance(a, DeleteInstance) and a.instance_id == current.instance_id for a in actions
    )


def test_a_malformed_isc_serves_nobody_new_and_makes_no_sleeper_obsolete() -> None:
    old = instance(s=spec("wanted", port=8005, options=("--old",)), gpus=("GPU-2",), isc_name="isc")
    s = snap(launcher("L", old), launcher("free"))
    broken = replace(s, iscs={"isc": replace(s.iscs["isc"], problems=("bad options",))})
    assert placed(broken) == [
        SetRequesterStatus("r1", ("InferenceServerConfig isc is malformed (see its status)",))
    ]


def test_stray_awake_unbound_instance_is_put_to_sleep() -> None:
    """A wake that finished after its requester left leaves an awake, unbound instance."""
    stray = instance(s=spec("x", port=9000), gpus=("GPU-5",), state=InstanceState.AWAKE)
    plan = plan_node(snap(launcher("L", stray)), now_s=1.0, policy=Policy())
    assert SleepInstance("L", stray.instance_id) in plan.actions


def test_instance_ids_ignore_gpu_order() -> None:
    assert instance_id(WANTED, ("GPU-0", "GPU-1")) == instance_id(WANTED, ("GPU-1", "GPU-0"))
