"""The simulated platform: scheduler, kubelet, engines and their latencies, in SimPy.

:class:`SimCluster` does what Kubernetes and vLLM would do, taking the time they would take:
placing requester Pods on free GPUs, starting containers, loading weights from disk, moving
weights over PCIe on sleep and wake (bytes / bandwidth + overhead), and stopping engines on
delete. It never decides anything FMA decides; those decisions come from :mod:`fma.core`
through the executor. Long operations are *in flight* — an instance is ``WAKING``,
``FALLING_ASLEEP`` or ``STOPPING`` in the snapshot until it is done — exactly as the operator
sees them, and every change ends with :meth:`SimCluster.touch`, which wakes the controller for
that node.

Finalizers are modelled as Kubernetes keeps them: a requester with FMA's finalizer stays (being
deleted) until the controller releases it; a deleted provider's engines stop at once, and its
Pod object stays until it is unbound.
"""

from collections.abc import Callable, Generator
from functools import partial
from typing import Any

import simpy

from fma.adapters.sim.placement import FreeGpuIndex
from fma.adapters.sim.state import (
    SimInstance,
    SimNode,
    SimProvider,
    SimRequester,
    SimState,
    relabelled,
)
from fma.adapters.sim.trace import Trace
from fma.api.constants import LABEL_SLEEPING
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
        self.accelerator_query_fails: Callable[[str], bool] = lambda requester: False
        """Whether the controller's query of a requester's SPI fails (set with faults)."""
        self.sleepless_models: set[str] = set()
        """Models whose engines refuse to sleep (vLLM without sleep mode, or on a CPU)."""
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
        requester.assigned_gpus = gpus
        self.trace.record(
            self.now_s(),
            "requester_scheduled",
            requester=requester.uid,
            node=node.name,
            gpus=list(gpus),
        )
        self.after(
            self.latency.scheduler_s + self.latency.pod_start_s,
            partial(self._start_requester, requester),
        )

    def _start_requester(self, requester: SimRequester) -> None:
        if requester.uid not in self.state.requesters or requester.node is None:
            return
        requester.started_s = self.now_s()
        self.trace.record(self.now_s(), "requester_started", requester=requester.uid)
        # The adapter sees the Pod running (a watch event), reacts, and asks its SPI. No
        # decision needs the requester before its GPUs are known: the answer re-queues the node.
        lat = self.latency
        self.after(
            lat.watch_delay_s + lat.controller_reaction_s,
            partial(self._learn_accelerators, requester, 1),
        )

    def _learn_accelerators(self, requester: SimRequester, attempt: int) -> None:
        """The controller's adapter asks the running requester's SPI for its GPUs; the answer
        comes back one API round trip later and is recorded on the requester (its snapshot
        then carries them). A failed query is retried with back-off."""
        if self.state.requesters.get(requester.uid) is not requester or requester.deleting:
            return
        if self.accelerator_query_fails(requester.uid):
            lat = self.latency
            delay_s = min(lat.backoff_base_s * 2.0 ** min(attempt - 1, 62), lat.backoff_max_s)
            self.after(delay_s, partial(self._learn_accelerators, requester, attempt + 1))
            return
        self.after(self.latency.api_write_s, partial(self._record_accelerators, requester))

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
        """Start deleting a requester; FMA's finalizer holds it until the controller lets go.

        ``by`` says who asked: its owner or a user (``owner``), or the controller.
        """
        requester = self.state.requesters.get(uid)
        if requester is None or requester.deleting:
            return
        requester.deleting = True
        self.trace.record(self.now_s(), "requester_deleting", requester=uid, reason=reason, by=by)
        if requester.node is None:
            # An unscheduled Pod goes at once, wherever it waits in the scheduling queue.
            self._pending = [r for r in self._pending if r is not requester]
            self._remove_requester(requester)
        elif not requester.finalizer:
            self._remove_requester(requester)
        else:
            self.touch(requester.node)

    def set_requester_finalizer(self, requester: SimRequester, present: bool) -> None:
        """The controller adds or removes its finalizer; without it a deleting Pod goes."""
        requester.finalizer = present
        if not present and requester.deleting:
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
        if requester.node is not None:
            self.touch(requester.node)

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
            launcher_config=provider.launcher_config,
            max_instances=provider.max_instances,
        )
        self.touch(provider.node)  # the controller's informer sees the new Pod

    def start_launcher(self, provider: SimProvider) -> None:
        """A launcher Pod becomes Ready after its start (pod start and the vLLM import)."""
        provider.ready = False
        provider.ready_changed_s = self.now_s()
        provider.labels = relabelled(provider.labels, {LABEL_SLEEPING: "true"})
        self.add_provider(provider)
        self.after(self.latency.launcher_start_s, partial(self._launcher_ready, provider))

    def _launcher_ready(self, provider: SimProvider) -> None:
        if self.state.providers.get(provider.name) is not provider or provider.deleting:
            return
        provider.set_ready(True, self.now_s())
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
        """Start a level-1 sleep: weights per GPU device -> host, plus the fixed overhead.

        Ignored unless the instance is awake: a repeated POST /sleep is harmless to vLLM.
        """
        if instance.state is not InstanceState.AWAKE:
            return
        node = self.state.nodes[provider.node]
        delay = self.latency.sleep_overhead_s + instance.as_instance().bytes_per_gpu / (
            node.d2h_bytes_per_s
        )
        self._move(provider, instance, InstanceState.FALLING_ASLEEP, InstanceState.SLEEPING, delay)

    def wake_instance(self, provider: SimProvider, instance: SimInstance) -> None:
        """Start a wake: weights per GPU host -> device, plus the fixed overhead.

        Ignored unless the instance is asleep: a repeated POST /wake_up is harmless to vLLM.
        """
        if instance.state is not InstanceState.SLEEPING:
            return
        node = self.state.nodes[provider.node]
        delay = self.latency.wake_overhead_s + instance.as_instance().bytes_per_gpu / (
            node.h2d_bytes_per_s
        )
        self._move(provider, instance, InstanceState.WAKING, InstanceState.AWAKE, delay)

    def _move(
        self,
        provider: SimProvider,
        instance: SimInstance,
        moving: InstanceState,
        end: InstanceState,
        delay_s: float,
    ) -> None:
        instance.state = moving
        self._record_instance(provider, instance, f"instance_{moving.value}")
        self.after(delay_s, partial(self._finish, provider, instance, moving, end))

    def _finish(
        self,
        provider: SimProvider,
        instance: SimInstance,
        expected: InstanceState,
        result: InstanceState,
    ) -> None:
        if (
            provider.instances.get(instance.instance_id) is not instance
            or instance.state is not expected
        ):
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
            return
        instance.state = InstanceState.STOPPING
        self._record_instance(provider, instance, "instance_stopping", reason=reason, by=by)
        self.after(self.latency.engine_stop_s, partial(self._stopped, provider, instance, reason))

    def _stopped(self, provider: SimProvider, instance: SimInstance, reason: str) -> None:
        if provider.instances.get(instance.instance_id) is not instance:
            return
        self._forget(provider, instance, reason)
        self.touch(provider.node)

    def _forget(self, provider: SimProvider, instance: SimInstance, reason: str) -> None:
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
        self.touch(name)

    def set_node_ready(self, name: str, ready: bool) -> None:
        """The kubelet stops (or resumes) reporting: the Node is NotReady; its Pods run on."""
        node = self.state.nodes.get(name)
        if node is None or node.ready == ready:
            return
        node.ready = ready
        self._free.update(node)
        self.trace.record(self.now_s(), "node_ready" if ready else "node_not_ready", node=name)
        if ready:
            self.schedule_pending()
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
        if instance is None or instance.state in (InstanceState.STOPPED, InstanceState.STOPPING):
            return
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
