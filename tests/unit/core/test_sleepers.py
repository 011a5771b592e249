"""The sleeping-memory budget and the eviction policies."""

from fma.core.model import GIB_BYTES
from fma.core.policy import Policy
from fma.core.sleepers import Sleeper, evict_cost_aware, evict_lru, evict_oldest, victims_to_fit
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
    assert [s.provider for s in evict_lru([a, b], 200)] == ["b", "a"]
    assert [s.provider for s in evict_oldest([a, b], 200)] == ["a", "b"]


def test_cost_aware_prefers_to_keep_small_slow_to_start_models() -> None:
    big_quick = sleeper("big", gib=60, init_s=10, last_used_s=100)
    small_slow = sleeper("small", gib=4, init_s=60, last_used_s=100)
    assert [s.provider for s in evict_cost_aware([small_slow, big_quick], 200)] == ["big", "small"]
