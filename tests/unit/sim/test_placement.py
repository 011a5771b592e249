"""The scheduler's free-GPU index chooses as a full scan would, through cordons and node loss."""

from fma.adapters.sim.placement import FreeGpuIndex
from fma.adapters.sim.state import SimNode
from fma.core.model import Gpu


def node(name: str, gpus: int = 4) -> SimNode:
    devices = tuple(Gpu(f"{name}-g{i}", i, 80) for i in range(gpus))
    return SimNode(name, "p", devices, 1, 1.0, 1.0, 1.0, gpu_holder={g.uuid: None for g in devices})


def take(n: SimNode, count: int) -> None:
    for uuid in n.free_gpus()[:count]:
        n.gpu_holder[uuid] = "r"


def test_most_free_gpus_first_then_the_earliest_node() -> None:
    nodes = {n.name: n for n in (node("a"), node("b"), node("c"))}
    index = FreeGpuIndex(nodes)
    assert index.best(1) is nodes["a"]
    take(nodes["a"], 2)
    index.update(nodes["a"])
    assert index.best(1) is nodes["b"]
    assert index.best(3) is nodes["b"]
    take(nodes["b"], 4)
    take(nodes["c"], 4)
    index.update(nodes["b"])
    index.update(nodes["c"])
    assert index.best(3) is None
    assert index.best(2) is nodes["a"]


def test_cordoned_and_lost_nodes_are_skipped_and_come_back() -> None:
    nodes = {n.name: n for n in (node("a"), node("b"))}
    index = FreeGpuIndex(nodes)
    nodes["a"].schedulable = False
    index.update(nodes["a"])
    assert index.best(1) is nodes["b"]
    lost = nodes.pop("b")
    assert index.best(1) is None
    nodes["b"] = lost
    index.update(lost)
    assert index.best(1) is lost
    nodes["a"].schedulable = True
    index.update(nodes["a"])
    assert index.best(1) is nodes["a"]


def test_a_change_nobody_reported_is_repaired_when_met() -> None:
    nodes = {n.name: n for n in (node("a"), node("b"))}
    index = FreeGpuIndex(nodes)
    take(nodes["a"], 4)  # not reported
    assert index.best(1) is nodes["b"]
