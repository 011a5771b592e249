"""Sleeper-aware placement: where each policy sends a Pod, given rooms, sleepers and a queue."""

import pytest

from fma.core.placement import (
    PLACEMENTS,
    Choice,
    Pending,
    PlacementPolicy,
    Room,
    Sleeping,
    choose,
)

POD = Pending("p1", "model-a", 1)


def room(node: str, *free: str) -> Room:
    return Room(node, free)


# n1 is the scheduler's own choice (first); n2 holds a sleeper of model-a on g2-3.
ROOMS = [room("n1", "g1-0", "g1-1", "g1-2"), room("n2", "g2-0", "g2-3")]
SLEEPER = Sleeping("n2", ("g2-3",), "model-a")


def test_no_room_no_choice_under_every_policy() -> None:
    for policy in PLACEMENTS:
        assert choose(policy, Pending("p", "m", 2), [room("n1", "g")], []) is None


def test_default_ignores_sleepers() -> None:
    # Catches a default that follows sleepers: it must stay the scheduler's own choice.
    assert choose("default", POD, ROOMS, [SLEEPER]) == Choice("n1")


def test_node_affinity_prefers_the_sleepers_node_and_leaves_the_gpus_to_the_plugin() -> None:
    # Catches an affinity that is ignored (n1) or that also picks the GPUs (a GPU hint).
    assert choose("node-affinity", POD, ROOMS, [SLEEPER]) == Choice("n2")


def test_node_affinity_falls_back_when_the_sleepers_node_cannot_take_the_pod() -> None:
    assert choose("node-affinity", POD, ROOMS[:1], [SLEEPER]) == Choice("n1")


def test_affinity_only_toward_the_pods_own_identity() -> None:
    other = Sleeping("n2", ("g2-3",), "model-b")
    for policy in ("node-affinity", "gpu-aware", "oracle"):
        choice = choose(policy, POD, ROOMS, [other])
        assert choice is not None and choice.node == "n1" and not choice.aimed


def test_gpu_aware_takes_the_sleepers_gpus() -> None:
    choice = choose("gpu-aware", POD, ROOMS, [SLEEPER])
    assert choice == Choice("n2", ("g2-3",)) and choice.aimed


def test_gpu_aware_skips_a_sleeper_whose_gpus_are_taken_for_one_whose_are_free() -> None:
    # Sleepers of model-a on both nodes; only n2's is on free GPUs. node-affinity's rule alone
    # would send the Pod to n1 (first) where the sleeper cannot be woken.
    busy = Sleeping("n1", ("g1-7",), "model-a")
    assert choose("gpu-aware", POD, ROOMS, [busy, SLEEPER]) == Choice("n2", ("g2-3",))
    assert choose("node-affinity", POD, ROOMS, [busy, SLEEPER]) == Choice("n1")


def test_gpu_aware_needs_all_of_a_tensor_parallel_sleepers_gpus_free() -> None:
    pod = Pending("p", "model-a", 2)
    half_free = Sleeping("n2", ("g2-3", "g2-4"), "model-a")
    choice = choose("gpu-aware", pod, ROOMS, [half_free])
    assert choice == Choice("n2")  # its node still, by affinity, but no GPU hint


def test_oracle_leaves_a_gpu_to_the_pod_that_has_no_other() -> None:
    # POD could wake its model on n1's g1-0 or n2's g2-0; the other waiting Pod (model-b) only
    # on g1-0, where a sleeper of each model sits. The greedy rule takes the first room's GPU
    # (gpu-aware does, and so would an oracle without the matching); the oracle leaves it.
    rooms = [room("n1", "g1-0"), room("n2", "g2-0")]
    sleepers = [
        Sleeping("n1", ("g1-0",), "model-a"),
        Sleeping("n2", ("g2-0",), "model-a"),
        Sleeping("n1", ("g1-0",), "model-b"),
    ]
    other = Pending("p2", "model-b", 1)
    assert choose("gpu-aware", POD, rooms, sleepers) == Choice("n1", ("g1-0",))
    assert choose("oracle", POD, rooms, sleepers, others=[other]) == Choice("n2", ("g2-0",))


def test_oracle_still_hits_when_it_alone_can_use_a_sleeper() -> None:
    p2 = Pending("p2", "model-a", 1)  # wants the same, single sleeper
    oracle = choose("oracle", POD, ROOMS, [SLEEPER], others=[p2])
    assert oracle == Choice("n2", ("g2-3",))


def test_oracle_waits_for_a_sleepers_gpus_being_freed_where_the_others_go_elsewhere() -> None:
    # The sleeper's GPU is held by a Pod being deleted: only the oracle counts it as free soon.
    rooms = [room("n1", "g1-0"), Room("n2", ("g2-0",), freeing=("g2-3",))]
    assert choose("oracle", POD, rooms, [SLEEPER]) == Choice("n2", ("g2-3",), wait=True)
    assert choose("gpu-aware", POD, rooms, [SLEEPER]) == Choice("n2")
    # And so for an instance about to sleep there (its requester being deleted).
    to_be = Sleeping("n2", ("g2-3",), "model-a", soon=True)
    assert choose("oracle", POD, rooms, [to_be]) == Choice("n2", ("g2-3",), wait=True)
    assert choose("gpu-aware", POD, rooms, [to_be]) == Choice("n1")
    assert choose("node-affinity", POD, rooms, [to_be]) == Choice("n1")


def test_oracle_waits_even_when_no_node_has_a_free_gpu() -> None:
    rooms = [Room("n2", (), freeing=("g2-3",))]
    assert choose("oracle", POD, rooms, [SLEEPER]) == Choice("n2", ("g2-3",), wait=True)
    assert choose("gpu-aware", POD, rooms, [SLEEPER]) is None


@pytest.mark.parametrize("policy", PLACEMENTS)
def test_every_choice_is_a_room_and_aimed_gpus_are_free_there(policy: PlacementPolicy) -> None:
    sleepers = [SLEEPER, Sleeping("n1", ("g1-1",), "model-a"), Sleeping("n1", ("g1-9",), "x")]
    choice = choose(policy, POD, ROOMS, sleepers, others=[Pending("p2", "model-a", 1)])
    assert choice is not None
    free = {r.node: set(r.free) for r in ROOMS}
    assert choice.node in free
    if choice.gpus is not None:
        assert set(choice.gpus) <= free[choice.node]
