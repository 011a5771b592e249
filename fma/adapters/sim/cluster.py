"""The simulated platform: scheduler, kubelet, engines and their latencies, in SimPy.

:class:`SimCluster` does what Kubernetes and vLLM would do, taking the time they would take.
It never decides anything FMA decides; those decisions come from :mod:`fma.core` through the
executor. Long operations are *in flight* — an instance is ``WAKING``, ``FALLING_ASLEEP`` or
``STOPPING`` in the snapshot until it is done — exactly as the operator sees them, and every
change ends with :meth:`SimCluster.touch`, which wakes the controller for that node.

- **Scheduling** (:mod:`fma.adapters.sim.scheduling`): the kube-scheduler's queue with its
  back-off, and the kubelet's device manager choosing the GPUs.
- **Pods** start ``pod_start_s`` after they are bound. A requester's Pod turns Ready at the
  first tick of its readiness probe after the controller relayed readiness; a launcher's at the
  first tick of its own once its process serves (``launcher_start_s`` after creation: Pod start
  and the vLLM import). A deleted requester's container stops ``pod_stop_s`` later; its Pod, and
  with it its GPUs, goes once that is done and FMA's finalizer is off.
- **Engines** start in parts: a direct Pod's start and the vLLM import (in a launcher, only a
  tensor-parallel engine's workers import it again), the weights loaded from the node's disk,
  torch.compile (quick once the node's compile cache holds the model), then the engine's init
  (profiling, KV cache, CUDA graphs). The controller learns that an engine serves when its
  probe asks: at once, then after ``engine_probe_min_s``, doubling to ``engine_probe_max_s``.
- **Transfers** (:mod:`fma.adapters.sim.links`) take a path over the node's topology and share
  its links max-min fairly: a load from the disk, a wake (a fixed part, then each GPU's share of
  the weights host -> device at ``h2d``) and a sleep (a fixed part, the pinning of its host
  buffers the first time, then each GPU's share device -> host at ``d2h``).
- **Stops**: an engine on its GPUs stops ``engine_stop_s`` after a delete, holding them; a
  sleeper exits at once (the launcher answers the delete after ``sleeper_stop_s``, which the
  controller's worker waits for).
- **Launchers** hold host memory (their imported vLLM): the node's memory for sleepers is what
  is left.

Finalizers are modelled as Kubernetes keeps them: a requester with FMA's finalizer stays (being
deleted) until the controller releases it; a deleted provider's engines stop at once, and its
Pod object stays until it is unbound.
"""

import math
from collections.abc import Callable, Generator
from functools import partial
from typing import Any

import simpy

from fma.adapters.sim.clock import call_later
from fma.adapters.sim.links import Links, Transfer
from fma.adapters.sim.scheduling import KubeScheduler
from fma.adapters.sim.state import (
    SimInstance,
    SimNode,
    SimProvider,
    SimRequester,
    SimState,
    relabelled,
)
from fma.adapters.sim.topology import Topology, topology_of
from fma.adapters.sim.trace import Trace
from fma.api.constants import LABEL_SLEEPING
from fma.api.latency import GB, Latency
from fma.core.model import InstanceState, ProviderKind
from fma.core.placement import PlacementPolicy

SimProcess = Generator[simpy.Event, Any, None]

COMPILE_S_DEFAULT = 0.0
COMPILE_CACHED_S_DEFAULT = 0.0
"""What an engine's torch.compile takes when its spec does not say (tests build specs by hand)."""


def next_tick(start_s: float, delay_s: float, period_s: float, at_s: float) -> float:
    """The first tick of a probe (first at ``start_s + delay_s``, then every ``period_s``) at or
    after ``at_s``."""
    first_s = start_s + delay_s
    if at_s <= first_s:
        return first_s
    # A tick within rounding of ``at_s`` is that tick, not the next one.
    return max(at_s, first_s + math.ceil((at_s - first_s) / period_s - 1e-9) * period_s)


def next_engine_probe(start_s: float, min_s: float, max_s: float, at_s: float) -> float:
    """The first time the controller asks a starting engine (at ``start_s``, then after
    ``min_s``, doubling to ``max_s``) at or after ``at_s``."""
    t, interval = start_s, min_s
    while t < at_s:
        t += interval
        interval = min(max_s, interval * 2)
    return t


class SimCluster:
    """Platform behaviour over :class:`SimState`; ``on_change(node)`` notifies the controller."""

    def __init__(
        self,
        env: simpy.Environment,
        state: SimState,
        trace: Trace,
        latency: Latency,
        *,
        seed: int = 0,
        launcher_memory_bytes: int = 0,
        placement: PlacementPolicy = "default",
    ):
        self.env = env
        self.state = state
        self.trace = trace
        self.latency = latency
        self.launcher_memory_bytes = launcher_memory_bytes
        """Host memory one launcher process holds (vLLM imported)."""
        self.on_change: Callable[[str], None] = lambda node: None
        self.on_requester_gone: Callable[[SimRequester], None] = lambda r: None
        self.on_requester_ready: Callable[[SimRequester], None] = lambda r: None
        """Called when a requester's Pod turns Ready."""
        self.accelerator_query_fails: Callable[[str], bool] = lambda requester: False
        """Whether the controller's query of a requester's SPI fails (set with faults)."""
        self.sleepless_models: set[str] = set()
        """Models whose engines refuse to sleep (vLLM without sleep mode, or on a CPU)."""
        self.compile_s: dict[str, tuple[float, float]] = {}
        """Model -> torch.compile's time (first on a node, and from the node's cache)."""
        self.scheduler = KubeScheduler(
            env,
            state,
            scheduler_s=latency.scheduler_s,
            seed=seed,
            topology=self.topology,
            on_bound=self._bound,
            placement=placement,
        )
        self._links: dict[str, Links] = {}
        self._compiled: dict[str, dict[str, float]] = {}
        """Node -> model -> when its compile cache holds the model (once a compile ended)."""
        self._moving: dict[int, list[Transfer]] = {}
        """id(instance) -> its transfers under way."""
        self._seq = 0

    def now_s(self) -> float:
        return float(self.env.now)

    def next_name(self, prefix: str) -> str:
        self._seq += 1
        return f"{prefix}-{self._seq}"

    def after(self, delay_s: float, fn: Callable[[], None]) -> None:
        """Call ``fn`` after ``delay_s`` of simulated time: one event, no process."""
        call_later(self.env, delay_s, fn)

    def touch(self, node: str) -> None:
        self.on_change(node)

    def topology(self, node: SimNode) -> Topology:
        return topology_of(node.topology, len(node.gpus), node.disk_bytes_per_s / GB)

    def links(self, node: SimNode) -> Links:
        links = self._links.get(node.name)
        if links is None:
            links = self._links[node.name] = Links(self.env, self.topology(node).capacity)
        return links

    # --- requesters: the kube-scheduler and the kubelet ------------------------------------

    def submit(self, requester: SimRequester) -> None:
        """A requester Pod is created; the scheduler places it once GPUs are free."""
        self.state.add_requester(requester)
        self.trace.record(
            self.now_s(), "requester_created", requester=requester.uid, model=requester.model
        )
        self.scheduler.add(requester)

    def _bound(self, requester: SimRequester, node: SimNode, gpus: tuple[str, ...]) -> None:
        self.state.place_requester(requester, node.name)
        requester.assigned_gpus = gpus
        self.trace.record(
            self.now_s(),
            "requester_scheduled",
            requester=requester.uid,
            node=node.name,
            gpus=list(gpus),
        )
        self.after(self.latency.pod_start_s, partial(self._start_requester, requester))

    def _start_requester(self, requester: SimRequester) -> None:
        if self.state.requesters.get(requester.uid) is not requester or requester.deleting:
            return
        requester.started_s = self.now_s()
        self.trace.record(self.now_s(), "requester_started", requester=requester.uid)
        # The adapter sees the Pod running (a watch event) and asks its SPI once the requester
        # program answers. No decision needs the requester before its GPUs are known: the answer
        # re-queues the node.
        lat = self.latency
        self.after(
            max(lat.watch_delay_s, lat.requester_start_s),
            partial(self._learn_accelerators, requester, 1),
        )

    def _learn_accelerators(self, requester: SimRequester, attempt: int) -> None:
        """The controller's adapter asks the running requester's SPI for its GPUs; the answer
        comes back one call later and is recorded on the requester (its snapshot then carries
        them). A failed query is retried with back-off."""
        if self.state.requesters.get(requester.uid) is not requester or requester.deleting:
            return
        if self.accelerator_query_fails(requester.uid):
            lat = self.latency
            delay_s = min(lat.backoff_base_s * 2.0 ** min(attempt - 1, 62), lat.backoff_max_s)
            self.after(delay_s, partial(self._learn_accelerators, requester, attempt + 1))
            return
        self.after(self.latency.http_call_s, partial(self._record_accelerators, requester))

    def _record_accelerators(self, requester: SimRequester) -> None:
        if self.state.requesters.get(requester.uid) is not requester or requester.deleting:
            return
        requester.gpu_uuids = requester.assigned_gpus
        self.trace.record(
            self.now_s(),
            "accelerators",
            requester=requester.uid,
            gpus=list(requester.gpu_uuids or ()),
        )
        if requester.node is not None:
            self.touch(requester.node)

    def delete_requester(self, uid: str, reason: str, *, by: str = "owner") -> None:
        """Start deleting a requester: its container stops (``pod_stop_s``), and FMA's finalizer
        holds the Pod until the controller lets go. ``by`` says who asked: its owner or a user
        (``owner``), or the controller."""
        requester = self.state.requesters.get(uid)
        if requester is None or requester.deleting:
            return
        requester.deleting = True
        self.trace.record(self.now_s(), "requester_deleting", requester=uid, reason=reason, by=by)
        if requester.node is None:
            # An unscheduled Pod goes at once, wherever it waits in the scheduling queue.
            self.scheduler.forget(requester)
            self._remove_requester(requester)
            return
        self.after(self.latency.pod_stop_s, partial(self._requester_terminated, requester))
        if requester.finalizer:
            self.touch(requester.node)

    def _requester_terminated(self, requester: SimRequester) -> None:
        if self.state.requesters.get(requester.uid) is not requester:
            return
        requester.terminated = True
        if not requester.finalizer:
            self._remove_requester(requester)

    def set_requester_finalizer(self, requester: SimRequester, present: bool) -> None:
        """The controller adds or removes its finalizer; a deleted Pod whose container has
        stopped goes without it."""
        requester.finalizer = present
        if not present and requester.deleting and requester.terminated:
            self._remove_requester(requester)

    def _remove_requester(self, requester: SimRequester) -> None:
        if self.state.remove_requester(requester.uid) is None:
            return
        node = self.state.nodes.get(requester.node) if requester.node else None
        if node is not None:
            for uuid, holder in node.gpu_holder.items():
                if holder == requester.uid:
                    node.gpu_holder[uuid] = None
            self.scheduler.node_changed(node)
        self.trace.record(self.now_s(), "requester_deleted", requester=requester.uid)
        self.on_requester_gone(requester)
        self.scheduler.cluster_changed()
        if requester.node is not None:
            self.touch(requester.node)

    def set_ready(self, requester: SimRequester, ready: bool) -> None:
        """The controller relayed readiness to the requester; its Pod turns Ready at the next
        tick of its readiness probe."""
        if requester.ready == ready:
            return
        requester.ready = ready
        self.trace.record(self.now_s(), "ready" if ready else "unready", requester=requester.uid)
        if ready:
            requester.ready_s = self.now_s()
            lat = self.latency
            started_s = requester.started_s if requester.started_s is not None else self.now_s()
            tick_s = next_tick(
                started_s, lat.readiness_probe_delay_s, lat.readiness_probe_period_s, self.now_s()
            )
            self.after(tick_s - self.now_s(), partial(self._pod_ready, requester))

    def _pod_ready(self, requester: SimRequester) -> None:
        if self.state.requesters.get(requester.uid) is not requester or not requester.ready:
            return
        if requester.pod_ready_s is not None:
            return  # Ready once: the hold counts from the first time
        requester.pod_ready_s = self.now_s()
        self.trace.record(self.now_s(), "pod_ready", requester=requester.uid)
        self.on_requester_ready(requester)

    # --- providers and instances: the kubelet and the engines ------------------------------

    def add_provider(self, provider: SimProvider) -> None:
        self.state.add_provider(provider)
        self.trace.record(
            self.now_s(),
            "provider_created",
            provider=provider.name,
            node=provider.node,
            provider_kind=provider.kind.value,
            launcher_config=provider.launcher_config,
            max_instances=provider.max_instances,
        )
        self.touch(provider.node)  # the controller's informer sees the new Pod

    def start_launcher(self, provider: SimProvider) -> None:
        """A launcher Pod: its process serves after ``launcher_start_s`` (Pod start and the vLLM
        import, once), and its Pod is Ready at the next tick of its readiness probe."""
        provider.ready = False
        provider.ready_changed_s = self.now_s()
        provider.labels = relabelled(provider.labels, {LABEL_SLEEPING: "true"})
        self.add_provider(provider)
        self._hold_memory(provider.node, self.launcher_memory_bytes)
        lat = self.latency
        self._launcher_serves(provider, self.now_s() + lat.scheduler_s + lat.pod_start_s)

    def _launcher_serves(self, provider: SimProvider, container_s: float) -> None:
        """Its process serves ``launcher_start_s`` from now; the Pod is Ready at the first tick
        of its readiness probe after that (the container started at ``container_s``)."""
        lat = self.latency
        serving_s = self.now_s() + lat.launcher_start_s
        tick_s = next_tick(
            container_s, lat.launcher_probe_delay_s, lat.launcher_probe_period_s, serving_s
        )
        restarts = provider.restarts
        self.after(tick_s - self.now_s(), partial(self._launcher_ready, provider, restarts))

    def _launcher_ready(self, provider: SimProvider, restarts: int) -> None:
        if (
            self.state.providers.get(provider.name) is not provider
            or provider.deleting
            or provider.restarts != restarts
        ):
            return
        provider.set_ready(True, self.now_s())
        self.trace.record(
            self.now_s(), "launcher_ready", provider=provider.name, node=provider.node
        )
        self.touch(provider.node)

    def _hold_memory(self, node_name: str, nbytes: int) -> None:
        node = self.state.nodes.get(node_name)
        if node is not None and nbytes:
            node.reserved_bytes = max(0, node.reserved_bytes + nbytes)

    def start_instance(
        self, provider: SimProvider, instance: SimInstance, *, pod_start: bool
    ) -> None:
        """Start an engine (see the module docstring): process start, weights from disk,
        torch.compile, engine init; the controller notices at its next probe.

        A direct provider (``pod_start``) first pays the Pod start and the vLLM import; an
        instance in a launcher does not (the launcher imported vLLM once), unless it is
        tensor-parallel: its worker processes import vLLM again.
        """
        provider.instances[instance.instance_id] = instance
        self._record_instance(provider, instance, "instance_starting")
        lat = self.latency
        if pod_start:
            process_s = lat.pod_start_s + lat.vllm_import_s
        else:
            process_s = lat.vllm_import_s if len(instance.gpu_uuids) > 1 else 0.0
        created_s = self.now_s()
        self.after(process_s, partial(self._load, provider, instance, created_s))

    def _current(self, provider: SimProvider, instance: SimInstance, state: InstanceState) -> bool:
        return provider.instances.get(instance.instance_id) is instance and instance.state is state

    def _load(self, provider: SimProvider, instance: SimInstance, created_s: float) -> None:
        if not self._current(provider, instance, InstanceState.STARTING):
            return
        node = self.state.nodes[provider.node]
        topology = self.topology(node)
        self._transfer(
            node,
            instance,
            [topology.load(i) for i in self._indexes(node, instance)],
            math.inf,
            partial(self._initialise, provider, instance, created_s),
        )

    def _initialise(self, provider: SimProvider, instance: SimInstance, created_s: float) -> None:
        if not self._current(provider, instance, InstanceState.STARTING):
            return
        model = instance.spec.model
        first_s, cached_s = self.compile_s.get(model, (COMPILE_S_DEFAULT, COMPILE_CACHED_S_DEFAULT))
        compiled = self._compiled.setdefault(provider.node, {})
        cached = compiled.get(model, math.inf) <= self.now_s()
        compile_s = cached_s if cached else first_s
        if not cached:
            compiled[model] = min(compiled.get(model, math.inf), self.now_s() + compile_s)
        up_s = self.now_s() + compile_s + instance.spec.engine_init_s
        lat = self.latency
        seen_s = next_engine_probe(created_s, lat.engine_probe_min_s, lat.engine_probe_max_s, up_s)
        self.after(
            seen_s - self.now_s(),
            partial(self._finish, provider, instance, InstanceState.STARTING, InstanceState.AWAKE),
        )

    @staticmethod
    def _indexes(node: SimNode, instance: SimInstance) -> list[int]:
        index = {g.uuid: g.index for g in node.gpus}
        return [index[u] for u in instance.gpu_uuids if u in index]

    def _transfer(
        self,
        node: SimNode,
        instance: SimInstance,
        paths: list[tuple[tuple[str, str], ...]],
        cap: float,
        on_done: Callable[[], None],
    ) -> None:
        """Move each GPU's share of the weights along its path; ``on_done`` once all are there."""
        if not paths:
            self.after(0.0, on_done)
            return
        links = self.links(node)
        nbytes = instance.spec.weights_bytes / len(paths)
        left = [len(paths)]

        def one_done() -> None:
            left[0] -= 1
            if left[0] == 0:
                self._moving.pop(id(instance), None)
                on_done()

        self._moving[id(instance)] = [links.start(p, nbytes, cap, one_done) for p in paths]

    def _stop_moving(self, provider: SimProvider, instance: SimInstance) -> None:
        """The engine is gone or stopping: its transfers end, freeing their share of the links."""
        transfers = self._moving.pop(id(instance), [])
        node = self.state.nodes.get(provider.node)
        if node is None:
            return
        links = self.links(node)
        for transfer in transfers:
            links.cancel(transfer)

    def sleep_instance(self, provider: SimProvider, instance: SimInstance) -> None:
        """Start a level-1 sleep: the fixed part, the pinning of its host buffers (the first
        time), then each GPU's share device -> host.

        Ignored unless the instance is awake: a repeated POST /sleep is harmless to vLLM.
        """
        if instance.state is not InstanceState.AWAKE:
            return
        node = self.state.nodes[provider.node]
        fixed_s = self.latency.sleep_overhead_s
        if not instance.pinned:
            fixed_s += instance.spec.weights_bytes / node.pin_bytes_per_s
            instance.pinned = True
        topology = self.topology(node)
        paths = [topology.d2h(i) for i in self._indexes(node, instance)]
        self._move(provider, instance, InstanceState.FALLING_ASLEEP, InstanceState.SLEEPING)
        self.after(
            fixed_s,
            partial(
                self._copy, provider, instance, paths, node.d2h_bytes_per_s, InstanceState.SLEEPING
            ),
        )

    def wake_instance(self, provider: SimProvider, instance: SimInstance) -> None:
        """Start a wake: the fixed part, then each GPU's share host -> device.

        Ignored unless the instance is asleep: a repeated POST /wake_up is harmless to vLLM.
        """
        if instance.state is not InstanceState.SLEEPING:
            return
        node = self.state.nodes[provider.node]
        topology = self.topology(node)
        paths = [topology.h2d(i) for i in self._indexes(node, instance)]
        self._move(provider, instance, InstanceState.WAKING, InstanceState.AWAKE)
        self.after(
            self.latency.wake_overhead_s,
            partial(
                self._copy, provider, instance, paths, node.h2d_bytes_per_s, InstanceState.AWAKE
            ),
        )

    def _move(
        self,
        provider: SimProvider,
        instance: SimInstance,
        moving: InstanceState,
        end: InstanceState,
    ) -> None:
        instance.state = moving
        self._record_instance(provider, instance, f"instance_{moving.value}")

    def _copy(
        self,
        provider: SimProvider,
        instance: SimInstance,
        paths: list[tuple[tuple[str, str], ...]],
        cap: float,
        end: InstanceState,
    ) -> None:
        moving = (
            InstanceState.WAKING if end is InstanceState.AWAKE else InstanceState.FALLING_ASLEEP
        )
        if not self._current(provider, instance, moving):
            return
        node = self.state.nodes[provider.node]
        self._transfer(
            node, instance, paths, cap, partial(self._finish, provider, instance, moving, end)
        )

    def _finish(
        self,
        provider: SimProvider,
        instance: SimInstance,
        expected: InstanceState,
        result: InstanceState,
    ) -> None:
        if not self._current(provider, instance, expected):
            return  # deleted or crashed meanwhile
        instance.state = result
        instance.last_used_s = self.now_s()
        self._record_instance(provider, instance, f"instance_{result.value}")
        self.touch(provider.node)

    def delete_instance(
        self, provider: SimProvider, instance_id: str, reason: str, *, by: str = "controller"
    ) -> None:
        """Stop an engine and forget it. One on its GPUs holds them while it stops
        (``engine_stop_s``); a sleeper (which holds only its residue, and exits at once, before
        the launcher's DELETE returns) or one that already exited is forgotten at once."""
        instance = provider.instances.get(instance_id)
        if instance is None or instance.state is InstanceState.STOPPING:
            return
        if not instance.state.on_gpus or self.latency.engine_stop_s <= 0:
            self._forget(provider, instance, reason)
            self.touch(provider.node)  # the launcher's instance list changed: a watch event
            return
        self._stop_moving(provider, instance)
        instance.state = InstanceState.STOPPING
        self._record_instance(provider, instance, "instance_stopping", reason=reason, by=by)
        self.after(self.latency.engine_stop_s, partial(self._stopped, provider, instance, reason))

    def _stopped(self, provider: SimProvider, instance: SimInstance, reason: str) -> None:
        if provider.instances.get(instance.instance_id) is not instance:
            return
        self._forget(provider, instance, reason)
        self.touch(provider.node)

    def _forget(self, provider: SimProvider, instance: SimInstance, reason: str) -> None:
        self._stop_moving(provider, instance)
        del provider.instances[instance.instance_id]
        self._record_instance(provider, instance, "instance_deleted", reason=reason)
        if provider.deleting and not provider.instances:
            self._remove_provider_if_released(provider)

    def delete_provider(
        self, provider: SimProvider, reason: str, *, by: str = "controller"
    ) -> None:
        """Delete a Pod: its engines stop at once; the provider finalizer keeps a bound Pod
        object until it is unbound. ``by`` says who asked: the controller or a user."""
        if not provider.deleting:
            provider.deleting = True
            provider.deletion_reason = reason
            self.trace.record(
                self.now_s(), "provider_deleting", provider=provider.name, reason=reason, by=by
            )
        for instance_id in list(provider.instances):
            self.delete_instance(provider, instance_id, reason, by=by)
        self._remove_provider_if_released(provider)

    def release_provider(self, provider: SimProvider) -> None:
        """The binding and the provider finalizer are gone: a deleted Pod may now go."""
        if provider.deleting:
            self._remove_provider_if_released(provider)

    def _remove_provider_if_released(self, provider: SimProvider) -> None:
        if provider.bound_requester_uid is not None or provider.instances:
            return
        if self.state.remove_provider(provider.name) is None:
            return
        if provider.kind is ProviderKind.LAUNCHER:
            self._hold_memory(provider.node, -self.launcher_memory_bytes)
        self.trace.record(
            self.now_s(),
            "provider_deleted",
            provider=provider.name,
            reason=provider.deletion_reason or "deleted",
        )
        self.touch(provider.node)

    def _record_instance(
        self, provider: SimProvider, instance: SimInstance, kind: str, **extra: Any
    ) -> None:
        self.trace.record(
            self.now_s(),
            kind,
            provider=provider.name,
            instance=instance.instance_id,
            node=provider.node,
            gpus=list(instance.gpu_uuids),
            bytes=instance.spec.weights_bytes,
            port=instance.spec.port,
            utilization=instance.spec.gpu_memory_utilization,
            **extra,
        )

    # --- disruptions: what happens to the cluster from outside FMA -----------------------------

    def lose_node(self, name: str) -> None:
        """The Node object is deleted: Pod GC force-deletes every Pod on it, finalizers or not."""
        node = self.state.nodes.pop(name, None)
        if node is None:
            return
        self.trace.record(self.now_s(), "node_lost", node=name)
        for provider in self.state.providers_on(name):
            provider.bound_requester_uid = None
            provider.deleting = True
            provider.deletion_reason = "node lost"
            for instance in list(provider.instances.values()):
                self._forget(provider, instance, "node lost")
            self._remove_provider_if_released(provider)
        for requester in self.state.requesters_on(name):
            self._remove_requester(requester)
        self._links.pop(name, None)
        self._compiled.pop(name, None)
        self.touch(name)

    def set_node_ready(self, name: str, ready: bool) -> None:
        """The kubelet stops (or resumes) reporting: the Node is NotReady; its Pods run on."""
        node = self.state.nodes.get(name)
        if node is None or node.ready == ready:
            return
        node.ready = ready
        self.scheduler.node_changed(node)
        self.trace.record(self.now_s(), "node_ready" if ready else "node_not_ready", node=name)
        if ready:
            self.scheduler.cluster_changed()
        self.touch(name)

    def cordon_node(self, name: str) -> None:
        """No new Pods are scheduled there; the controller sees it on its next look."""
        node = self.state.nodes.get(name)
        if node is not None and node.schedulable:
            node.schedulable = False
            self.scheduler.node_changed(node)
            self.trace.record(self.now_s(), "node_cordoned", node=name)
            self.touch(name)

    def crash_instance(self, provider: SimProvider, instance_id: str) -> None:
        """The instance's process exits; it stays listed as stopped until deleted."""
        instance = provider.instances.get(instance_id)
        if instance is None or instance.state in (InstanceState.STOPPED, InstanceState.STOPPING):
            return
        self._stop_moving(provider, instance)
        instance.state = InstanceState.STOPPED
        self._record_instance(provider, instance, "instance_stopped")
        self.touch(provider.node)

    def crash_launcher(self, provider: SimProvider) -> None:
        """The launcher container restarts: its instances vanish and it is not Ready for a while."""
        for instance in list(provider.instances.values()):
            self._forget(provider, instance, "launcher crashed")
        self.trace.record(self.now_s(), "launcher_crashed", provider=provider.name)
        provider.restarts += 1
        provider.set_ready(False, self.now_s())
        self._launcher_serves(provider, self.now_s())
        self.touch(provider.node)

    def uncordon_node(self, name: str) -> None:
        """The node takes new Pods again; waiting requesters may be placed there."""
        node = self.state.nodes.get(name)
        if node is not None and not node.schedulable:
            node.schedulable = True
            self.scheduler.node_changed(node)
            self.trace.record(self.now_s(), "node_uncordoned", node=name)
            self.scheduler.cluster_changed()
            self.touch(name)

    def restore_node(self, node: SimNode) -> None:
        """A lost machine is back: a new, empty Node object with the same hardware."""
        if node.name in self.state.nodes:
            return
        node.ready = True
        node.schedulable = True
        node.reserved_bytes = 0
        node.gpu_holder = {g.uuid: None for g in node.gpus}
        self.state.nodes[node.name] = node
        self.scheduler.node_changed(node)
        self.trace.record(self.now_s(), "node_restored", node=node.name)
        self.scheduler.cluster_changed()
        self.touch(node.name)
