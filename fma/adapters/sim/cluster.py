"""The simulated platform: scheduler, kubelet, engines and their latencies, in SimPy.

:class:`SimCluster` does what Kubernetes and vLLM would do, taking the time they would take:
placing requester Pods on free GPUs, starting containers, loading weights from disk, and
moving weights over PCIe on sleep and wake (bytes / bandwidth + overhead). It never decides
anything FMA decides; those decisions come from :mod:`fma.core` through the executor.
Every change ends with :meth:`SimCluster.touch`, which wakes the controller for that node.
"""

from collections.abc import Callable, Generator
from functools import partial
from typing import Any

import simpy

from fma.adapters.sim.placement import FreeGpuIndex
from fma.adapters.sim.state import SimInstance, SimNode, SimProvider, SimRequester, SimState
from fma.adapters.sim.trace import Trace
from fma.api.latency import Latency
from fma.core.model import InstanceState

SimProcess = Generator[simpy.Event, Any, None]


class SimCluster:
    """Platform behaviour over :class:`SimState`; ``on_change(node)`` notifies the controller."""

    def __init__(self, env: simpy.Environment, state: SimState, trace: Trace, latency: Latency):
        self.env = env
        self.state = state
        self.trace = trace
        self.latency = latency
        self.on_change: Callable[[str], None] = lambda node: None
        self.on_requester_gone: Callable[[SimRequester], None] = lambda r: None
        self.on_requester_ready: Callable[[SimRequester], None] = lambda r: None
        self._pending: list[SimRequester] = []
        self._free = FreeGpuIndex(state.nodes)
        self._seq = 0

    def now_s(self) -> float:
        return float(self.env.now)

    def next_name(self, prefix: str) -> str:
        self._seq += 1
        return f"{prefix}-{self._seq}"

    def after(self, delay_s: float, fn: Callable[[], None]) -> None:
        """Call ``fn`` after ``delay_s`` of simulated time: one event, no process."""
        self.env.timeout(delay_s).callbacks.append(lambda _event: fn())

    def touch(self, node: str) -> None:
        self.on_change(node)

    # --- requesters: the kube-scheduler and the kubelet ------------------------------------

    def submit(self, requester: SimRequester) -> None:
        """A requester Pod is created; it waits until GPUs on a schedulable node are free."""
        self.state.add_requester(requester)
        self.trace.record(
            self.now_s(), "requester_created", requester=requester.uid, model=requester.model
        )
        self._pending.append(requester)
        self.schedule_pending()

    def schedule_pending(self) -> None:
        """Place waiting requesters in arrival order (no backfilling past the head)."""
        while self._pending:
            head = self._pending[0]
            if head.deleting:
                self._pending.pop(0)
                self._remove_requester(head)
                continue
            node = self._choose_node(head)
            if node is None:
                return
            self._pending.pop(0)
            self._place(head, node)

    @staticmethod
    def _usable_gpus(node: SimNode, requester: SimRequester) -> list[str]:
        """Free GPUs the requester may get; pinned requesters may get only their own."""
        free = node.free_gpus()
        if requester.pinned_gpus is None:
            return free
        return [g for g in free if g in requester.pinned_gpus]

    def _choose_node(self, requester: SimRequester) -> SimNode | None:
        """LeastAllocated-like: the schedulable node with the most free GPUs, then the earliest."""
        if requester.pinned_gpus is None:
            return self._free.best(requester.gpus)
        best: SimNode | None = None
        for node in self.state.nodes.values():
            if not (node.schedulable and node.ready):
                continue
            if len(self._usable_gpus(node, requester)) < requester.gpus:
                continue
            if best is None or len(node.free_gpus()) > len(best.free_gpus()):
                best = node
        return best

    def _place(self, requester: SimRequester, node: SimNode) -> None:
        # The device plugin hands out the lowest-index free GPUs.
        gpus = tuple(self._usable_gpus(node, requester)[: requester.gpus])
        for uuid in gpus:
            node.gpu_holder[uuid] = requester.uid
        self._free.update(node)
        self.state.place_requester(requester, node.name)
        self.trace.record(
            self.now_s(),
            "requester_scheduled",
            requester=requester.uid,
            node=node.name,
            gpus=list(gpus),
        )
        self.after(
            self.latency.scheduler_s + self.latency.pod_start_s,
            partial(self._start_requester, requester, gpus),
        )

    def _start_requester(self, requester: SimRequester, gpus: tuple[str, ...]) -> None:
        if requester.uid not in self.state.requesters or requester.node is None:
            return
        requester.started_s = self.now_s()
        requester.gpu_uuids = gpus
        self.trace.record(self.now_s(), "requester_started", requester=requester.uid)
        self.touch(requester.node)

    def delete_requester(self, uid: str, reason: str) -> None:
        """Mark for deletion; the requester finalizer holds it while a provider is bound."""
        requester = self.state.requesters.get(uid)
        if requester is None or requester.deleting:
            return
        requester.deleting = True
        self.trace.record(self.now_s(), "requester_deleting", requester=uid, reason=reason)
        bound = requester.node is not None and any(
            p.bound_requester_uid == uid for p in self.state.providers_on(requester.node)
        )
        if requester.node is None:
            # An unscheduled Pod goes at once, wherever it waits in the scheduling queue.
            self._pending = [r for r in self._pending if r is not requester]
            self._remove_requester(requester)
        elif not bound:
            self._remove_requester(requester)
        else:
            self.touch(requester.node)

    def release_requester_if_deleting(self, uid: str | None) -> None:
        requester = self.state.requesters.get(uid) if uid else None
        if requester is not None and requester.deleting:
            self._remove_requester(requester)

    def _remove_requester(self, requester: SimRequester) -> None:
        if self.state.remove_requester(requester.uid) is None:
            return
        node = self.state.nodes.get(requester.node) if requester.node else None
        if node is not None:
            for uuid, holder in node.gpu_holder.items():
                if holder == requester.uid:
                    node.gpu_holder[uuid] = None
            self._free.update(node)
        self.trace.record(self.now_s(), "requester_deleted", requester=requester.uid)
        self.on_requester_gone(requester)
        self.schedule_pending()

    def set_ready(self, requester: SimRequester, ready: bool) -> None:
        if requester.ready == ready:
            return
        requester.ready = ready
        self.trace.record(self.now_s(), "ready" if ready else "unready", requester=requester.uid)
        if ready:
            requester.ready_s = self.now_s()
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
        )
        self.touch(provider.node)  # the controller's informer sees the new Pod

    def start_launcher(self, provider: SimProvider) -> None:
        """A launcher Pod becomes Ready after its start (pod start and the vLLM import)."""
        provider.ready = False
        self.add_provider(provider)
        self.after(self.latency.launcher_start_s, partial(self._launcher_ready, provider))

    def _launcher_ready(self, provider: SimProvider) -> None:
        if self.state.providers.get(provider.name) is not provider:
            return
        provider.ready = True
        self.trace.record(
            self.now_s(), "launcher_ready", provider=provider.name, node=provider.node
        )
        self.touch(provider.node)

    def start_instance(
        self, provider: SimProvider, instance: SimInstance, *, pod_start: bool
    ) -> None:
        """Start an engine: weights from disk + engine init, then it serves.

        A direct provider (``pod_start``) first pays the Pod start and the vLLM import; an
        instance in a launcher does not: the launcher imported vLLM once, when it started.
        """
        provider.instances[instance.instance_id] = instance
        self._record_instance(provider, instance, "instance_starting")
        node = self.state.nodes[provider.node]
        load_s = instance.spec.weights_bytes / node.disk_bytes_per_s
        process_s = self.latency.pod_start_s + self.latency.vllm_import_s if pod_start else 0.0
        delay = load_s + instance.spec.engine_init_s + process_s
        self.after(
            delay,
            partial(self._finish, provider, instance, InstanceState.STARTING, InstanceState.AWAKE),
        )

    def sleep_instance(self, provider: SimProvider, instance: SimInstance) -> None:
        """Level-1 sleep: weights per GPU device -> host, plus the fixed overhead."""
        node = self.state.nodes[provider.node]
        self._move_weights(
            provider,
            instance,
            InstanceState.AWAKE,
            InstanceState.SLEEPING,
            self.latency.sleep_overhead_s,
            node.d2h_bytes_per_s,
        )

    def wake_instance(self, provider: SimProvider, instance: SimInstance) -> None:
        """Wake: weights per GPU host -> device, plus the fixed overhead."""
        node = self.state.nodes[provider.node]
        self._move_weights(
            provider,
            instance,
            InstanceState.SLEEPING,
            InstanceState.AWAKE,
            self.latency.wake_overhead_s,
            node.h2d_bytes_per_s,
        )

    def _move_weights(
        self,
        provider: SimProvider,
        instance: SimInstance,
        start: InstanceState,
        end: InstanceState,
        overhead_s: float,
        bytes_per_s: float,
    ) -> None:
        """Take ``instance`` from ``start`` to ``end`` in overhead + bytes per GPU / bandwidth.

        Ignored while another move is under way or when the instance is not in ``start``: a
        repeated request is harmless, as a repeated POST /sleep or /wake_up is to vLLM.
        """
        if instance.busy or instance.state is not start:
            return
        instance.busy = True
        if end is InstanceState.AWAKE:
            self._record_instance(provider, instance, "instance_waking")
        delay = overhead_s + instance.as_instance().bytes_per_gpu / bytes_per_s
        self.after(delay, partial(self._finish, provider, instance, start, end))

    def _finish(
        self,
        provider: SimProvider,
        instance: SimInstance,
        expected: InstanceState,
        result: InstanceState,
    ) -> None:
        instance.busy = False
        if (
            provider.instances.get(instance.instance_id) is not instance
            or instance.state is not expected
        ):
            return  # deleted or crashed meanwhile
        instance.state = result
        instance.last_used_s = self.now_s()
        self._record_instance(provider, instance, f"instance_{result.value}")
        self.touch(provider.node)

    def delete_instance(self, provider: SimProvider, instance_id: str, reason: str) -> None:
        instance = provider.instances.pop(instance_id, None)
        if instance is not None:
            self._record_instance(provider, instance, "instance_deleted", reason=reason)

    def delete_provider(self, provider: SimProvider, reason: str) -> None:
        """Delete a Pod; the provider finalizer keeps a bound one until it is unbound."""
        if provider.bound_requester_uid is not None:
            if not provider.deleting:
                provider.deleting = True
                self.trace.record(
                    self.now_s(), "provider_deleting", provider=provider.name, reason=reason
                )
            return
        for instance_id in list(provider.instances):
            self.delete_instance(provider, instance_id, reason)
        self.state.remove_provider(provider.name)
        self.trace.record(self.now_s(), "provider_deleted", provider=provider.name, reason=reason)

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
            self.delete_provider(provider, "node lost")
        for requester in self.state.requesters_on(name):
            self._remove_requester(requester)
        self.touch(name)

    def cordon_node(self, name: str) -> None:
        """No new Pods are scheduled there; the controller sees it on its next look."""
        node = self.state.nodes.get(name)
        if node is not None and node.schedulable:
            node.schedulable = False
            self._free.update(node)
            self.trace.record(self.now_s(), "node_cordoned", node=name)
            self.touch(name)

    def crash_instance(self, provider: SimProvider, instance_id: str) -> None:
        """The instance's process exits; it stays listed as stopped until deleted."""
        instance = provider.instances.get(instance_id)
        if instance is None or instance.state is InstanceState.STOPPED:
            return
        instance.state = InstanceState.STOPPED
        instance.busy = False
        self._record_instance(provider, instance, "instance_stopped")
        self.touch(provider.node)

    def crash_launcher(self, provider: SimProvider) -> None:
        """The launcher container restarts: its instances vanish and it is not Ready for a while."""
        for instance_id in list(provider.instances):
            self.delete_instance(provider, instance_id, "launcher crashed")
        self.trace.record(self.now_s(), "launcher_crashed", provider=provider.name)
        provider.ready = False
        self.after(self.latency.launcher_start_s, partial(self._launcher_ready, provider))
        self.touch(provider.node)

    def uncordon_node(self, name: str) -> None:
        """The node takes new Pods again; waiting requesters may be placed there."""
        node = self.state.nodes.get(name)
        if node is not None and not node.schedulable:
            node.schedulable = True
            self._free.update(node)
            self.trace.record(self.now_s(), "node_uncordoned", node=name)
            self.schedule_pending()
            self.touch(name)

    def restore_node(self, node: SimNode) -> None:
        """A lost machine is back: a new, empty Node object with the same hardware."""
        if node.name in self.state.nodes:
            return
        node.ready = True
        node.schedulable = True
        node.gpu_holder = {g.uuid: None for g in node.gpus}
        self.state.nodes[node.name] = node
        self._free.update(node)
        self.trace.record(self.now_s(), "node_restored", node=node.name)
        self.schedule_pending()
        self.touch(node.name)
