"""A stopped engine nobody is bound to is cleaned up, whatever kind of provider holds it."""

from fma.core.actions import DeleteProvider, DeleteRequester
from fma.core.dualpods import plan_node
from fma.core.model import InstanceState
from fma.core.policy import Policy
from tests.builders import bound, essential, instance, provider, requester, snapshot


def test_unbound_direct_provider_whose_engine_stopped_is_deleted() -> None:
    crashed = provider(inst=instance(state=InstanceState.STOPPED))
    plan = plan_node(snapshot(providers=(crashed,)), now_s=10.0, policy=Policy())
    assert plan.actions == (DeleteProvider("p1", "its instance stopped"),)


def test_bound_direct_provider_whose_engine_stopped_is_left_to_its_requester() -> None:
    r = requester()
    crashed = bound(provider(inst=instance(state=InstanceState.STOPPED)), r)
    plan = plan_node(snapshot(requesters=(r,), providers=(crashed,)), now_s=10.0, policy=Policy())
    assert [type(a) for a in essential(plan)] == [DeleteRequester]
