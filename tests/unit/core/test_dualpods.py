"""Direct-path decisions: each test builds a snapshot and asserts on the plan."""

from dataclasses import replace

import pytest

from fma.core.actions import (
    Bind,
    CreateDirectProvider,
    DeleteProvider,
    DeleteRequester,
    Plan,
    RelayReadiness,
    SetRequesterStatus,
    SleepInstance,
    Unbind,
    UpdateRequesterMeta,
    WakeInstance,
)
from fma.core.dualpods import plan_node
from fma.core.model import ActuationPath, InstanceState
from fma.core.policy import Actuation, Policy
from tests.builders import (
    bound,
    essential,
    instance,
    node,
    provider,
    requester,
    snapshot,
    spec,
    steady,
)

POLICY = Policy()


def kinds(plan: Plan) -> list[type]:
    return [type(a) for a in essential(plan)]


def test_new_requester_with_nothing_to_wake_gets_a_cold_provider() -> None:
    plan = plan_node(snapshot(requesters=(requester(),)), now_s=1.0, policy=POLICY)
    (create,) = essential(plan)
    assert isinstance(create, CreateDirectProvider)
    assert create.path is ActuationPath.COLD
    assert create.gpu_uuids == ("GPU-0",)


def test_requester_matching_a_sleeper_binds_it_hot() -> None:
    sleeper = provider(inst=instance(state=InstanceState.SLEEPING))
    plan = plan_node(
        snapshot(requesters=(requester(),), providers=(sleeper,)), now_s=1.0, policy=POLICY
    )
    assert essential(plan) == (
        Bind("p1", "r1", sleeper.instances[0].instance_id, ActuationPath.HOT),
    )


def test_sleeper_on_other_gpus_is_not_a_hot_hit() -> None:
    sleeper = provider(inst=instance(gpus=("GPU-1",)))
    plan = plan_node(
        snapshot(requesters=(requester(),), providers=(sleeper,)), now_s=1.0, policy=POLICY
    )
    assert kinds(plan) == [CreateDirectProvider]


def test_sleeper_of_another_model_is_not_a_hot_hit() -> None:
    sleeper = provider(inst=instance(s=spec("other")))
    plan = plan_node(
        snapshot(requesters=(requester(),), providers=(sleeper,)), now_s=1.0, policy=POLICY
    )
    assert kinds(plan) == [CreateDirectProvider]


def test_bound_sleeping_instance_is_woken() -> None:
    r = requester()
    p = bound(provider(inst=instance(state=InstanceState.SLEEPING)), r, ActuationPath.HOT)
    plan = plan_node(snapshot(requesters=(r,), providers=(p,)), now_s=1.0, policy=POLICY)
    assert kinds(plan) == [WakeInstance]


@pytest.mark.parametrize("path", list(ActuationPath), ids=lambda p: p.value)
def test_first_ready_relay_records_the_actuation_path(path: ActuationPath) -> None:
    r, p = steady(
        requester(), bound(provider(inst=instance(state=InstanceState.AWAKE)), requester(), path)
    )
    plan = plan_node(snapshot(requesters=(r,), providers=(p,)), now_s=1.0, policy=POLICY)
    assert plan.actions == (RelayReadiness("r1", True, actuation=path),)


def test_later_relays_do_not_record_another_actuation() -> None:
    r, p = steady(
        requester(actuated=True),
        bound(provider(inst=instance(state=InstanceState.AWAKE)), requester()),
    )
    plan = plan_node(snapshot(requesters=(r,), providers=(p,)), now_s=1.0, policy=POLICY)
    assert plan.actions == (RelayReadiness("r1", True, actuation=None),)


def test_ready_requester_in_a_steady_state_needs_nothing() -> None:
    r = requester(ready=True, actuated=True)
    r, p = steady(r, bound(provider(inst=instance(state=InstanceState.AWAKE)), r))
    plan = plan_node(snapshot(requesters=(r,), providers=(p,)), now_s=1.0, policy=POLICY)
    assert plan == Plan()


def test_a_bound_requester_gets_its_finalizer_and_labels_once() -> None:
    r = requester(ready=True, actuated=True)
    p = bound(provider(inst=instance(state=InstanceState.AWAKE)), r)
    plan = plan_node(snapshot(requesters=(r,), providers=(p,)), now_s=1.0, policy=POLICY)
    assert UpdateRequesterMeta("r1", True, "p1", None) in plan.actions


def test_deleting_requester_puts_its_provider_to_sleep_and_stays_bound_until_asleep() -> None:
    r = requester(deleting=True, finalizer=True)
    p = bound(provider(inst=instance(state=InstanceState.AWAKE)), r)
    plan = plan_node(snapshot(requesters=(r,), providers=(p,)), now_s=1.0, policy=POLICY)
    assert kinds(plan) == [SleepInstance]
    falling = bound(provider(inst=instance(state=InstanceState.FALLING_ASLEEP)), r)
    assert (
        plan_node(snapshot(requesters=(r,), providers=(falling,)), now_s=2.0, policy=POLICY).actions
        == ()
    )
    asleep = bound(provider(inst=instance(state=InstanceState.SLEEPING)), r)
    done = plan_node(snapshot(requesters=(r,), providers=(asleep,)), now_s=3.0, policy=POLICY)
    assert done.actions == (Unbind("p1"), UpdateRequesterMeta("r1", finalizer=False))


def test_gone_requester_is_unbound_too() -> None:
    """After a controller restart the requester may already be gone: the provider still sleeps,
    and is unbound once asleep."""
    p = bound(provider(inst=instance(state=InstanceState.AWAKE)), requester())
    plan = plan_node(snapshot(providers=(p,)), now_s=1.0, policy=POLICY)
    assert kinds(plan) == [SleepInstance]
    asleep = bound(provider(inst=instance(state=InstanceState.SLEEPING)), requester())
    assert plan_node(snapshot(providers=(asleep,)), now_s=2.0, policy=POLICY).actions == (
        Unbind("p1"),
    )


def test_a_deleting_requester_keeps_its_finalizer_while_its_gpus_are_in_use() -> None:
    """Unbound, but the provider's engine on its GPUs is still stopping: wait for it."""
    r = requester(deleting=True, finalizer=True)
    stopping = provider(inst=instance(state=InstanceState.STOPPING), deleting=True)
    plan = plan_node(snapshot(requesters=(r,), providers=(stopping,)), now_s=1.0, policy=POLICY)
    assert plan.actions == ()
    free = plan_node(snapshot(requesters=(r,)), now_s=2.0, policy=POLICY)
    assert free.actions == (UpdateRequesterMeta("r1", finalizer=False),)


def test_cold_policy_deletes_instead_of_sleeping() -> None:
    r = requester(deleting=True)
    p = bound(provider(inst=instance(state=InstanceState.AWAKE)), r)
    plan = plan_node(
        snapshot(requesters=(r,), providers=(p,)),
        now_s=1.0,
        policy=Policy(actuation=Actuation.COLD),
    )
    assert kinds(plan) == [DeleteProvider, Unbind]


def test_cold_policy_never_wakes_a_sleeper() -> None:
    sleeper = provider(inst=instance(state=InstanceState.SLEEPING))
    plan = plan_node(
        snapshot(requesters=(requester(),), providers=(sleeper,)),
        now_s=1.0,
        policy=Policy(actuation=Actuation.COLD),
    )
    assert kinds(plan) != [Bind]


def test_provider_being_deleted_deletes_its_requester() -> None:
    r = requester()
    p = replace(bound(provider(inst=instance(state=InstanceState.AWAKE)), r), deleting=True)
    plan = plan_node(snapshot(requesters=(r,), providers=(p,)), now_s=1.0, policy=POLICY)
    assert kinds(plan) == [DeleteRequester]


def test_cordoned_node_deletes_an_unbound_requester() -> None:
    plan = plan_node(
        snapshot(requesters=(requester(),), n=node(schedulable=False)), now_s=1.0, policy=POLICY
    )
    assert kinds(plan) == [DeleteRequester]


def test_unknown_gpu_goes_to_requester_status_once() -> None:
    plan = plan_node(snapshot(requesters=(requester(gpus=("GPU-99",)),)), now_s=1.0, policy=POLICY)
    problem = ("GPU GPU-99 is not on node n1",)
    assert essential(plan) == (SetRequesterStatus("r1", problem),)
    told = requester(gpus=("GPU-99",), errors=problem)
    assert plan_node(snapshot(requesters=(told,)), now_s=2.0, policy=POLICY) == Plan()


def test_a_requester_with_bad_input_of_its_own_is_told_and_not_served() -> None:
    bad = requester(gpus=None, problems=("annotation dual-pods.llm-d.ai/admin-port: not a port",))
    plan = plan_node(snapshot(requesters=(bad,)), now_s=1.0, policy=POLICY)
    assert essential(plan) == (SetRequesterStatus("r1", bad.problems),)
    told = replace(bad, errors=bad.problems)
    assert plan_node(snapshot(requesters=(told,)), now_s=2.0, policy=POLICY) == Plan()


def test_a_requester_whose_gpus_are_not_known_yet_waits() -> None:
    plan = plan_node(snapshot(requesters=(requester(gpus=None),)), now_s=1.0, policy=POLICY)
    assert plan == Plan()


def test_stuck_start_is_abandoned_after_the_ready_timeout() -> None:
    r = requester()
    p = bound(provider(inst=instance(state=InstanceState.STARTING)), r)
    waiting = plan_node(
        snapshot(requesters=(r,), providers=(p,)), now_s=10.0, policy=Policy(ready_timeout_s=60)
    )
    assert essential(waiting) == () and waiting.requeue_after_s == pytest.approx(50.0)
    late = plan_node(
        snapshot(requesters=(r,), providers=(p,)), now_s=61.0, policy=Policy(ready_timeout_s=60)
    )
    assert kinds(late) == [DeleteProvider, Unbind]


def test_sleepers_over_gpu_memory_are_evicted_before_creating() -> None:
    """An engine claiming 97 % of the GPU leaves room for one sleeper's residue, not two."""
    big = spec("big", weights_gib=70, gpu_memory_utilization=0.97)
    sleepers = (
        provider("old", inst=instance(s=spec("a"), last_used_s=1.0)),
        provider("new", inst=instance(s=spec("b"), last_used_s=5.0)),
    )
    plan = plan_node(
        snapshot(requesters=(requester(spec=big),), providers=sleepers), now_s=10.0, policy=POLICY
    )
    assert essential(plan) == (DeleteProvider("old", "evicted to fit the sleeping-memory budget"),)
    assert plan.requeue_after_s == 0.0


def test_model_that_cannot_fit_is_reported() -> None:
    plan = plan_node(
        snapshot(requesters=(requester(spec=spec("huge", weights_gib=200)),)),
        now_s=1.0,
        policy=POLICY,
    )
    assert kinds(plan) == [SetRequesterStatus]
