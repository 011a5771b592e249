"""Node boards as graphs: the paths transfers take, and the GPU sets the device plugin prefers."""

import pytest

from fma.adapters.sim.topology import SCORE_NVLINK, Topology, topology_of
from fma.api.latency import GB
from fma.api.topology import NVLINK_C2C, PCIE_GEN5


def test_hgx_gpus_in_pairs_share_a_switch_uplink() -> None:
    hgx = Topology("hgx", 8, 5.0)
    # GPUs 0 and 1 behind one switch: their wakes cross the same uplink, GPU 2's does not
    assert hgx.h2d(0)[0] == hgx.h2d(1)[0]
    assert hgx.h2d(0)[0] != hgx.h2d(2)[0]
    # and the uplink is a Gen5 x16 link: its floor, not vLLM's rate
    assert hgx.capacity[hgx.h2d(0)[0]] == pytest.approx(PCIE_GEN5.h2d_floor_gbps * GB)


def test_hgx_halves_sit_on_two_sockets_and_loads_come_from_the_first() -> None:
    hgx = Topology("hgx", 8, 5.0)
    assert hgx.host_of(0) != hgx.host_of(7)
    load = hgx.load(7)
    assert load[0][0] == "disk" and load[-1][1] == "gpu:7"
    assert hgx.capacity[load[0]] == pytest.approx(5.0 * GB)


def test_the_device_plugin_prefers_nvlinked_gpus_behind_one_switch() -> None:
    hgx = Topology("hgx", 8, 5.0)
    assert hgx.pair_score(0, 1) > hgx.pair_score(0, 2) > hgx.pair_score(0, 7) >= SCORE_NVLINK
    assert set(hgx.best_set([5, 2, 3, 7], 2)) == {2, 3}
    # among equals, the first in the order it was given
    assert hgx.best_set([6, 7, 2, 3], 2) == (6, 7)


def test_a_pcie_box_has_no_nvlink_and_four_gpus_per_switch() -> None:
    box = Topology("pcie", 8, 5.0)
    assert box.h2d(0)[0] == box.h2d(3)[0] != box.h2d(4)[0]
    assert box.pair_score(0, 4) == 0  # across sockets, no NVLink
    assert set(box.best_set([0, 4, 5, 1], 2)) in ({0, 1}, {4, 5})


def test_a_gh200_gpu_is_fed_over_c2c() -> None:
    gh = Topology("gh200", 4, 5.0)
    (link,) = gh.h2d(2)
    assert gh.capacity[link] == pytest.approx(NVLINK_C2C.h2d_floor_gbps * GB)
    assert gh.h2d_floor_bytes_per_s() == pytest.approx(346 * GB)


def test_nodes_of_one_pool_share_one_topology() -> None:
    assert topology_of("hgx", 8, 5.0) is topology_of("hgx", 8, 5.0)
