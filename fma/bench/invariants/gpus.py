"""GPU safety: who holds a GPU, and whether its memory suffices.

- :class:`GpuExclusive` — no GPU is held by two instances that are loading, serving, moving
  weights or stopping at once;
- :class:`GpuMemoryFits` — on every GPU, what the awake instances claim (their
  ``utilization`` of the GPU, or their weights if larger) plus every sleeper's residue fits
  the GPU's memory: what vLLM needs free to start or wake;
- :class:`GpuSingleRequester` — no GPU is given to two requesters at once (the scheduler's
  promise).
"""

from fma.bench.invariants.replay import ON_GPUS, Checker, Event, World


class GpuExclusive(Checker):
    name = "gpu_exclusive_awake"

    def after(self, e: Event, world: World) -> None:
        if e["kind"].removeprefix("instance_") not in ON_GPUS:
            return
        key = f"{e['provider']}/{e['instance']}"
        mine = world.instances.get(key)
        if mine is None:
            return
        for gpu in mine.gpus:
            for other in world.instances_on_gpu(gpu):
                other_key = f"{other.provider}/{other.instance}"
                if other_key != key and other.state in ON_GPUS:
                    self.breach(e["t"], gpu=gpu, instances=[other_key, key])


class GpuMemoryFits(Checker):
    name = "gpu_memory_fits"

    def after(self, e: Event, world: World) -> None:
        if e["kind"] not in ("instance_starting", "instance_waking"):
            return  # the moments an engine needs its claim free; a sleep only frees memory
        residue = int(world.limits.get("sleeper_residue_bytes", 0))
        newcomer = world.instances.get(f"{e['provider']}/{e['instance']}")
        if newcomer is None:
            return
        for gpu in newcomer.gpus:
            memory = world.gpu_memory.get(gpu)
            if memory is None:
                continue
            used = 0
            for inst in world.instances_on_gpu(gpu):
                share = inst.bytes // max(1, len(inst.gpus))
                if inst.state in ON_GPUS:
                    used += max(int(inst.utilization * memory), share)
                elif inst.state == "sleeping":
                    used += residue
            if used > memory:
                self.breach(e["t"], gpu=gpu, used_bytes=used, memory=memory)


class GpuSingleRequester(Checker):
    name = "gpu_single_requester"

    def before(self, e: Event, world: World) -> None:
        if e["kind"] != "requester_scheduled":
            return
        for gpu in e["gpus"]:
            for other in world.requesters.values():
                if other.uid != e["requester"] and gpu in other.gpus:
                    self.breach(e["t"], gpu=gpu, requesters=[other.uid, e["requester"]])
