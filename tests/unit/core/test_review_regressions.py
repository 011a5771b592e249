"""Decision bugs an outside review reproduced on snapshots, each kept as a regression test.

Every test builds the review's snapshot and asserts what the controller must do instead. The
simulated repros (W2, R2, P2, S2 end to end) are in ``tests/unit/sim/test_review_regressions.py``.
"""

from dataclasses import replace

from fma.core.actions import (
    Bind,
    CreateLauncher,
    DeleteInstance,
    DeleteRequester,
    EmitEvent,
    Plan,
    RelayReadiness,
    SleepInstance,
    Unbind,
)
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
from fma.core.reasons import PROVIDER_NOT_READY, RECLAIMED
from fma.core.sleepers import Sleeper, victims_to_fit
from tests.builders import essential, instance, node, requester, spec

LC = LauncherConfigSpec("lc", 4, "t")
WANT = spec("wanted", port=8005)


def L(name: str, *insts: object, **over: object) -> Provider:
    p = Provider(
        name,
        "n1",
        ProviderKind.LAUNCHER,
        0.0,
        tuple(insts),  # type: ignore[arg-type]
        launcher_config="lc",
        template_hash="t",
    )
    return replace(p, **over)  # type: ignore[arg-type]


def snap(rs: tuple[object, ...], ps: tuple[Provider, ...]) -> NodeSnapshot:
    return NodeSnapshot(
        "n1",
        node(),
        rs,  # type: ignore[arg-type]
        ps,
        {"isc": IscSpec("isc", WANT, "lc")},
        {"lc": LC},
    )


def test_b1_a_duplicate_binding_is_released_and_reported() -> None:
    """Two launchers bound to one live requester: one serves, the other is released with a
    warning Event (it used to leak for ever, unseen)."""
    i = instance(s=WANT, state=InstanceState.AWAKE)
    r = requester("r1", spec=None, isc_name="isc", ready=True, actuated=True)
    b = {
        "bound_requester_uid": "r1",
        "bound_instance_id": i.instance_id,
        "bound_s": 0.0,
        "path": ActuationPath.WARM,
    }
    plan = plan_node(snap((r,), (L("L1", i, **b), L("L2", i, **b))), now_s=100, policy=Policy())
    assert any(isinstance(a, EmitEvent) and a.reason == "DuplicateBinding" for a in plan.actions)
    touched = {getattr(a, "provider", None) for a in essential(plan)}
    assert "L2" in touched and "L1" not in touched
    assert SleepInstance("L2", i.instance_id) in plan.actions
    assert not any(isinstance(a, RelayReadiness) for a in plan.actions)


def test_w1_readiness_is_withdrawn_and_a_long_broken_launcher_loses_its_requester() -> None:
    """A bound launcher that is not Ready: the requester's readiness goes at once; after the
    ready timeout of being not Ready, the requester is deleted (it used to be unbound while
    still Ready, and re-placed cold as if nothing had happened)."""
    p = L(
        "L1",
        bound_requester_uid="r1",
        bound_instance_id="I-x",
        bound_s=0.0,
        path=ActuationPath.WARM,
        ready=False,
    )
    r = requester("r1", spec=None, isc_name="isc", ready=True, actuated=True)
    plan = plan_node(snap((r,), (p,)), now_s=700, policy=Policy())
    assert essential(plan) == (
        RelayReadiness("r1", False),
        DeleteRequester("r1", PROVIDER_NOT_READY),
    )
    assert Unbind("L1") not in plan.actions


def test_w1_a_launcher_that_just_went_not_ready_only_withdraws_readiness() -> None:
    p = L(
        "L1",
        bound_requester_uid="r1",
        bound_instance_id="I-x",
        bound_s=0.0,
        path=ActuationPath.WARM,
        ready=False,
        ready_changed_s=690.0,
    )
    r = requester("r1", spec=None, isc_name="isc", ready=True, actuated=True)
    plan = plan_node(snap((r,), (p,)), now_s=700, policy=Policy())
    assert essential(plan) == (RelayReadiness("r1", False),)
    assert plan.requeue_after_s == 590.0


def test_r1_the_cross_launcher_reclaim_takes_the_least_recently_used_sleeper() -> None:
    """Both launchers are full; the plan deletes the sleeper idle since t=10, not the one used
    at t=1000 (the tie-break used to be inverted: MRU)."""
    lc = LauncherConfigSpec("lc", 1, "t")
    a = instance(s=spec("a", port=9001), gpus=("GPU-3",), last_used_s=10.0)
    b = instance(s=spec("b", port=9002), gpus=("GPU-4",), last_used_s=1000.0)
    s = replace(
        snap((requester("r1", spec=None, isc_name="isc"),), (L("A-old", a), L("B-new", b))),
        launcher_configs={"lc": lc},
    )
    plan = plan_node(s, now_s=2000, policy=Policy())
    assert essential(plan)[0] == DeleteInstance("A-old", a.instance_id, RECLAIMED)


def test_r2_a_long_lived_launcher_that_just_restarted_is_not_stuck() -> None:
    """Created at 0, Ready until 700, restarting since: not stuck (it used to be deleted with
    its sleepers 20 ms after any NotReady blip, being older than the ready timeout)."""
    sleeper = instance(s=spec("m", port=9001), gpus=("GPU-3",))
    restarting = L("L1", sleeper, ready=False, ready_changed_s=700.0, restarts=1)
    plan = plan_node(snap((), (restarting,)), now_s=700.02, policy=Policy())
    assert plan.actions == ()


def test_p1_a_cold_launcher_plan_makes_no_spare_launcher_to_delete_later() -> None:
    """With a population policy of one, creating a launcher bound to a requester counts as the
    one: no second, unbound launcher (which the next pass would delete as surplus)."""
    s = replace(snap((requester("r1", spec=None, isc_name="isc"),), ()), launcher_policy={"lc": 1})
    plan = plan_node(s, now_s=1.0, policy=Policy())
    creates = [a for a in plan.actions if isinstance(a, CreateLauncher)]
    assert len(creates) == 1 and creates[0].requester_uid == "r1"


def test_the_gpu_budget_admits_five_residues_not_forty() -> None:
    """An 8B model awake at vLLM's default 0.9 on an 80 GiB GPU leaves 8 GiB: five sleepers'
    1.5 GiB residues. The budget used to count the weights only and admit about forty."""
    awake = instance(s=spec("llama-8b", weights_gib=16), state=InstanceState.AWAKE)
    sleepers = [
        Sleeper(f"s{k}", instance(s=spec(f"m{k}", weights_gib=1), last_used_s=float(k)))
        for k in range(40)
    ]
    victims = victims_to_fit(
        node=node(), sleepers=sleepers, awake=[awake], policy=Policy(), now_s=100
    )
    assert victims is not None and len(sleepers) - len(victims) == 5


def test_a_hot_bind_is_not_made_to_a_launcher_while_it_wakes_something_else() -> None:
    """A launcher whose instance is still waking stays bound to its requester: no one else can
    bind it mid-wake (the start of the review's W2 hang)."""
    waking = instance(s=spec("b", port=8006), gpus=("GPU-1",), state=InstanceState.WAKING)
    mine = instance(s=WANT, gpus=("GPU-0",), state=InstanceState.SLEEPING)
    bound_elsewhere = L(
        "L1", waking, mine, bound_requester_uid="gone", bound_instance_id=waking.instance_id
    )
    r = requester("r1", spec=None, isc_name="isc")
    plan = plan_node(snap((r,), (bound_elsewhere,)), now_s=1.0, policy=Policy())
    assert not any(isinstance(a, Bind) and a.provider == "L1" for a in plan.actions)
    assert plan != Plan()
