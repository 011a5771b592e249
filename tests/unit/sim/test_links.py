"""Transfers share a node's links max-min fairly, recomputed as they start and end."""

import pytest
import simpy

from fma.adapters.sim.links import Links, Transfer, share

GB = 1e9
UPLINK = ("socket", "switch")
GPU0 = ("switch", "gpu0")
GPU1 = ("switch", "gpu1")
CAPACITY = {UPLINK: 50 * GB, GPU0: 40 * GB, GPU1: 40 * GB}


def transfer(edges: tuple[tuple[str, str], ...], cap: float = float("inf")) -> Transfer:
    return Transfer(edges, 100 * GB, cap, lambda: None)


def test_two_transfers_share_the_link_they_cross() -> None:
    a, b = transfer((UPLINK, GPU0)), transfer((UPLINK, GPU1))
    share([a, b], CAPACITY)
    assert a.rate == b.rate == pytest.approx(25 * GB)


def test_a_transfer_held_back_by_its_cap_leaves_the_rest_to_the_other() -> None:
    slow, fast = transfer((UPLINK, GPU0), cap=10 * GB), transfer((UPLINK, GPU1))
    share([slow, fast], CAPACITY)
    assert slow.rate == pytest.approx(10 * GB)
    # the uplink's other 40 GB/s, which is also all GPU 1's own link takes
    assert fast.rate == pytest.approx(40 * GB)


def test_alone_a_transfer_gets_its_narrowest_link() -> None:
    (only,) = [transfer((UPLINK, GPU0))]
    share([only], CAPACITY)
    assert only.rate == pytest.approx(40 * GB)


def run(moves: list[tuple[float, tuple[tuple[str, str], ...], float]]) -> list[float]:
    """Start each (at, path, GB) and return when each finished."""
    env = simpy.Environment()
    links = Links(env, CAPACITY)
    done: list[float] = [0.0] * len(moves)

    def starter(k: int, path: tuple[tuple[str, str], ...], nbytes: float) -> None:
        def finished() -> None:
            done[k] = float(env.now)

        links.start(path, nbytes * GB, float("inf"), finished)

    for k, (at_s, path, gb) in enumerate(moves):
        env.timeout(at_s).callbacks.append(lambda _e, k=k, p=path, g=gb: starter(k, p, g))
    env.run()
    return done


def test_rates_are_recomputed_when_a_transfer_starts_and_ends() -> None:
    # Alone, 40 GB at 40 GB/s; from t=0.5 it shares the uplink at 25 GB/s with a 10 GB one.
    first, second = run([(0.0, (UPLINK, GPU0), 40.0), (0.5, (UPLINK, GPU1), 10.0)])
    assert second == pytest.approx(0.5 + 10 / 25)
    # first: 20 GB by 0.5 s, 10 GB more by 0.9 s at 25 GB/s, the last 10 GB alone at 40 GB/s
    assert first == pytest.approx(0.9 + 10 / 40)


def test_a_cancelled_transfer_frees_its_share() -> None:
    env = simpy.Environment()
    links = Links(env, CAPACITY)
    finished: list[float] = []
    a = links.start((UPLINK, GPU0), 50 * GB, float("inf"), lambda: finished.append(-1.0))
    links.start((UPLINK, GPU1), 50 * GB, float("inf"), lambda: finished.append(env.now))
    env.timeout(1.0).callbacks.append(lambda _e: links.cancel(a))
    env.run()
    # 25 GB in the first second, the other 25 GB alone at 40 GB/s; the cancelled one never ends
    assert finished == [pytest.approx(1.0 + 25 / 40)]
