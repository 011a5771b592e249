"""The sleeping-memory budget and the eviction policies."""

import pytest

from fma.core.model import GIB_BYTES, InstanceState
from fma.core.policy import Policy
from fma.core.sleepers import (
    REUSE_HALF_LIFE_S,
    Sleeper,
    evict_cost_aware,
    evict_lru,
    evict_oldest,
    expected_saving_s,
    keep_value,
    victims_to_fit,
)
from tests.builders import instance, node, spec


def sleeper(
    name: str,
    model: str = "m",
    gib: float = 10,
    last_used_s: float = 0.0,
    created_s: float = 0.0,
    gpus: tuple[str, ...] = ("GPU-0",),
    init_s: float = 20.0,
) -> Sleeper:
    s = spec(model, weights_gib=gib, engine_init_s=init_s)
    return Sleeper(name, instance(s=s, gpus=gpus, last_used_s=last_used_s, created_s=created_s))


def test_everything_fits_means_no_victims() -> None:
    assert (
        victims_to_fit(node=node(), sleepers=[sleeper("a")], awake=[], policy=Policy(), now_s=0)
        == []
    )


def test_per_gpu_byte_budget_evicts_least_recently_used() -> None:
    sleepers = [
        sleeper("a", "a", last_used_s=5),
        sleeper("b", "b", last_used_s=1),
        sleeper("c", "c", last_used_s=9),
    ]
    policy = Policy(sleeping_bytes_per_gpu_max=25 * GIB_BYTES)
    victims = victims_to_fit(node=node(), sleepers=sleepers, awake=[], policy=policy, now_s=10)
    assert [v.provider for v in victims or []] == ["b"]


def test_host_memory_bounds_sleepers() -> None:
    sleepers = [
        sleeper(str(i), str(i), gib=40, last_used_s=i, gpus=(f"GPU-{i}",)) for i in range(4)
    ]
    victims = victims_to_fit(
        node=node(host_gib=100), sleepers=sleepers, awake=[], policy=Policy(), now_s=10
    )
    # 100 GiB less a 10 % reserve holds two 40 GiB sleepers.
    assert [v.provider for v in victims or []] == ["0", "1"]


def test_evicting_on_another_gpu_is_not_done_when_it_does_not_help() -> None:
    sleepers = [
        sleeper("other-gpu", "x", last_used_s=0, gpus=("GPU-1",)),
        sleeper("a", "a", last_used_s=1),
        sleeper("b", "b", last_used_s=2),
    ]
    policy = Policy(sleeping_bytes_per_gpu_max=15 * GIB_BYTES)
    victims = victims_to_fit(node=node(), sleepers=sleepers, awake=[], policy=policy, now_s=10)
    assert [v.provider for v in victims or []] == ["a"]


def test_unevictable_sleepers_are_never_chosen() -> None:
    pinned = Sleeper("pinned", sleeper("x").instance, evictable=False)
    policy = Policy(sleeping_bytes_per_gpu_max=5 * GIB_BYTES)
    assert victims_to_fit(node=node(), sleepers=[pinned], awake=[], policy=policy, now_s=0) is None


def test_lru_uses_last_use_and_oldest_uses_creation() -> None:
    a = sleeper("a", created_s=0, last_used_s=100)
    b = sleeper("b", created_s=50, last_used_s=60)
    assert [s.provider for s in evict_lru([a, b], 200, node())] == ["b", "a"]
    assert [s.provider for s in evict_oldest([a, b], 200, node())] == ["a", "b"]


def test_cost_aware_prefers_to_keep_small_slow_to_start_models() -> None:
    big_quick = sleeper("big", gib=60, init_s=10, last_used_s=100)
    small_slow = sleeper("small", gib=4, init_s=60, last_used_s=100)
    order = evict_cost_aware([small_slow, big_quick], 200, node())
    assert [s.provider for s in order] == ["big", "small"]


def test_keep_value_counts_the_weights_load_a_wake_saves() -> None:
    """What a hot start saves is the cold start (load from disk + engine init) less the wake;
    on a slow disk the same sleeper is worth more."""
    s = sleeper("a", gib=40, init_s=10, last_used_s=100)
    fast, slow = node(disk_bytes_per_s=10e9), node(disk_bytes_per_s=1e9)
    saved_fast = expected_saving_s(s.instance, 100, fast)
    saved_slow = expected_saving_s(s.instance, 100, slow)
    load_s = 40 * GIB_BYTES / 1e9
    wake_s = 40 * GIB_BYTES / fast.h2d_bytes_per_s
    assert saved_slow == pytest.approx(load_s + 10 - wake_s)
    assert saved_slow > saved_fast
    assert keep_value(s, 100, slow) == pytest.approx(saved_slow / 40)


def test_an_idle_sleeper_is_worth_half_after_the_reuse_half_life() -> None:
    s = sleeper("a", last_used_s=0)
    assert expected_saving_s(s.instance, REUSE_HALF_LIFE_S, node()) == pytest.approx(
        expected_saving_s(s.instance, 0, node()) / 2
    )


def test_an_awake_engine_claims_its_utilization_of_the_gpu() -> None:
    """vLLM claims gpu_memory_utilization of the GPU for weights and KV cache: at 0.9 an 80 GiB
    GPU keeps room for five 1.5 GiB residues, not the fifty the weights alone would leave."""
    awake = instance(s=spec("m", weights_gib=8), state=InstanceState.AWAKE)
    others = [sleeper(str(k), str(k), gib=1) for k in range(6)]
    victims = victims_to_fit(node=node(), sleepers=others, awake=[awake], policy=Policy(), now_s=10)
    assert victims is not None and len(victims) == 1
