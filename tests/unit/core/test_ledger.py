"""A node's sleeping ledger, kept from one snapshot of the node to the next, is the ledger
counted anew from every sleeper."""

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from fma.core.model import InstanceState, NodeSnapshot, Provider, ProviderKind
from fma.core.policy import Policy
from fma.core.sleepers import Tally, _ledger_of, ledger
from tests.builders import instance, node, provider, snapshot, spec

STATES = list(InstanceState)
GPUS = tuple(f"GPU-{i}" for i in range(4))


def _launcher(name: str, states: list[InstanceState], bound: bool) -> Provider:
    instances = tuple(
        instance(
            s=spec(f"m{k}", weights_gib=8 + 8 * k),
            gpus=(GPUS[k % len(GPUS)],),
            state=state,
            last_used_s=float(k),
        )
        for k, state in enumerate(states)
    )
    return replace(
        provider(name),
        kind=ProviderKind.LAUNCHER,
        instances=instances,
        bound_requester_uid="r" if bound and instances else None,
        bound_instance_id=instances[0].instance_id if bound and instances else None,
    )


launchers = st.builds(
    _launcher,
    st.sampled_from([f"l{k}" for k in range(5)]),
    st.lists(st.sampled_from(STATES), max_size=4),
    st.booleans(),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(launchers, max_size=4), min_size=1, max_size=6), st.data())
def test_a_kept_ledger_counts_as_a_new_one(
    steps: list[list[Provider]], data: st.DataObject
) -> None:
    """Each step keeps some providers of the last snapshot (the same objects), drops the rest,
    and adds new ones; the ledger then equals one counted from scratch."""
    n = node(gpus=len(GPUS), host_gib=64)
    policy = Policy(sleeping_bytes_per_gpu_max=24 * 2**30)
    current: tuple[Provider, ...] = ()
    for fresh in steps:
        keep = data.draw(st.lists(st.booleans(), min_size=len(current), max_size=len(current)))
        names = {p.name for p in fresh}
        kept = [p for p, k in zip(current, keep, strict=True) if k and p.name not in names]
        current = tuple(kept + fresh)
        snap: NodeSnapshot = snapshot(providers=current, n=n)
        book = ledger(snap, policy)
        anew = _ledger_of(n, current, policy)
        assert book.sleepers == anew.sleepers
        assert book.awake == anew.awake
        assert book.tally == anew.tally
        assert book.tally.over() == anew.tally.over()


def test_tallies_differ_when_they_count_different_sleepers() -> None:
    n = node(gpus=2)
    policy = Policy()
    one = _launcher("l0", [InstanceState.SLEEPING], bound=False)
    two = _launcher("l1", [InstanceState.SLEEPING, InstanceState.SLEEPING], bound=False)
    assert _ledger_of(n, (one,), policy).tally != _ledger_of(n, (two,), policy).tally
    assert Tally(n, policy) == Tally(n, policy)
