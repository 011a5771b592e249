"""Sleeping memory: the budget the controller promises to keep.

- :class:`HostMemoryFits` — the weights sleepers (and instances moving weights) hold in a
  node's host memory stay within that memory less the reserve the controller keeps for the
  node itself;
- :class:`SleepingBudgetPerGpu` — the host bytes of sleepers attributed to one GPU stay within
  the per-GPU budget, when one is set.
"""

from fma.bench.invariants.replay import IN_HOST, Checker, Event, World


def _sleeping_kind(kind: str) -> bool:
    return kind.removeprefix("instance_") in IN_HOST


class HostMemoryFits(Checker):
    name = "host_memory_fits"

    def after(self, e: Event, world: World) -> None:
        if not _sleeping_kind(e["kind"]):
            return
        node = e.get("node", "")
        capacity = world.host_memory.get(node)
        if capacity is None:
            return
        reserve = float(world.limits.get("host_memory_reserve_fraction", 0.0))
        limit = capacity * (1.0 - reserve)
        used = sum(i.bytes for i in world.instances_on_node(node) if i.state in IN_HOST)
        if used > limit:
            self.breach(e["t"], node=node, used_bytes=used, memory=capacity, limit_bytes=int(limit))


class SleepingBudgetPerGpu(Checker):
    name = "sleeping_budget_per_gpu"

    def after(self, e: Event, world: World) -> None:
        per_gpu_max = world.limits.get("sleeping_bytes_per_gpu_max")
        if per_gpu_max is None or not _sleeping_kind(e["kind"]):
            return
        for gpu in e.get("gpus", ()):
            held = sum(
                i.bytes // max(1, len(i.gpus))
                for i in world.instances_on_gpu(gpu)
                if i.state in IN_HOST
            )
            if held > per_gpu_max:
                self.breach(e["t"], gpu=gpu, held_bytes=held, budget_bytes=per_gpu_max)
