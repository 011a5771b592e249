"""The simulated cluster's mutable state, and its read-only view as core snapshots.

The simulator owns these objects and changes them when actions complete; decisions only ever
see the frozen :class:`~fma.core.model.NodeSnapshot` built by :meth:`SimState.snapshot`. The
fields an operator would keep as annotations (the actuation path, the bound time, an
instance's last use, "actuation recorded") are fields of these objects: they belong to the
cluster, not to the controller, and survive its restarts.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fma.api.latency import GB, PIN_GBPS_DEFAULT
from fma.api.topology import TopologyName
from fma.core.model import (
    ActuationPath,
    ConfigSnapshot,
    Gpu,
    Instance,
    InstanceState,
    IscSpec,
    LauncherConfigSpec,
    Node,
    NodeSnapshot,
    Provider,
    ProviderKind,
    Requester,
    Routing,
    ServerSpec,
)


def relabelled(labels: Mapping[str, str], changes: Mapping[str, str | None]) -> dict[str, str]:
    """A copy of ``labels`` with ``changes`` applied (None removes a key). Labels are replaced,
    never changed in place, so a cached frozen view that shares the old dict stays right."""
    out = dict(labels)
    for key, value in changes.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out


class Versioned(dict[str, Any]):
    """A dict that counts its changes (``version``), so a snapshot can share an unchanged copy of
    it: snapshots then compare by identity, and never see a later change."""

    version = 0

    def _changed(self) -> None:
        self.version += 1

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, value)
        self._changed()

    def __delitem__(self, key: str) -> None:
        super().__delitem__(key)
        self._changed()

    def pop(self, key: str, *default: Any) -> Any:
        self._changed()
        return super().pop(key, *default)

    def popitem(self) -> tuple[str, Any]:
        self._changed()
        return super().popitem()

    def setdefault(self, key: str, default: Any = None) -> Any:
        self._changed()
        return super().setdefault(key, default)

    def update(self, *args: Any, **kwargs: Any) -> None:
        super().update(*args, **kwargs)
        self._changed()

    def clear(self) -> None:
        super().clear()
        self._changed()


class _Viewed:
    """Setting any field drops the cached frozen view (``_frozen``): views are rebuilt only
    after a change, since every reconcile of the node asks for them again."""

    __slots__ = ()

    def __setattr__(self, name: str, value: object) -> None:
        object.__setattr__(self, name, value)
        if name != "_frozen":
            object.__setattr__(self, "_frozen", None)


class _Instances(dict[str, "SimInstance"]):
    """A provider's instances: adding or removing one drops the provider's cached view, and an
    instance knows its provider, so that its own changes drop that view too."""

    def __init__(self, owner: "SimProvider", items: Mapping[str, "SimInstance"]) -> None:
        super().__init__()
        self._owner = owner
        for key, value in items.items():
            self[key] = value

    def __setitem__(self, key: str, value: "SimInstance") -> None:
        object.__setattr__(value, "_owner", self._owner)
        super().__setitem__(key, value)
        object.__setattr__(self._owner, "_frozen", None)

    def __delitem__(self, key: str) -> None:
        super().__delitem__(key)
        object.__setattr__(self._owner, "_frozen", None)

    def pop(self, key: str, *default: Any) -> Any:
        object.__setattr__(self._owner, "_frozen", None)
        return super().pop(key, *default)


@dataclass(slots=True)
class SimNode:
    name: str
    pool: str
    gpus: tuple[Gpu, ...]
    host_memory_bytes: int
    h2d_bytes_per_s: float
    d2h_bytes_per_s: float
    disk_bytes_per_s: float
    schedulable: bool = True
    ready: bool = True
    gpu_holder: dict[str, str | None] = field(default_factory=dict)
    """GPU UUID -> UID of the requester the scheduler gave it to (None: free)."""
    topology: TopologyName = "hgx"
    pin_bytes_per_s: float = PIN_GBPS_DEFAULT * GB
    """How fast host memory is page-locked (a first sleep pins its buffers)."""
    lowest_index_gpus: bool = False
    """The kubelet hands out the lowest free GPU indexes (else: as NVIDIA's device plugin)."""
    reserved_bytes: int = 0
    """Host memory its launchers' processes hold (not available to sleepers)."""
    _frozen: Node | None = field(default=None, repr=False, compare=False)

    def __setattr__(self, name: str, value: object) -> None:
        object.__setattr__(self, name, value)
        if name != "_frozen":
            object.__setattr__(self, "_frozen", None)

    def free_gpus(self) -> list[str]:
        return [g.uuid for g in self.gpus if self.gpu_holder.get(g.uuid) is None]

    def as_node(self) -> Node:
        frozen = self._frozen
        if frozen is None:
            frozen = Node(
                self.name,
                self.gpus,
                self.host_memory_bytes - self.reserved_bytes,
                self.schedulable,
                self.ready,
                disk_bytes_per_s=self.disk_bytes_per_s,
                h2d_bytes_per_s=self.h2d_bytes_per_s,
            )
            self._frozen = frozen
        return frozen


@dataclass(slots=True)
class SimRequester(_Viewed):
    uid: str
    name: str
    model: str
    spec: ServerSpec
    created_s: float
    demand_index: int
    gpus: int = 1
    isc_name: str | None = None
    """Set on the launcher path: the InferenceServerConfig this requester names."""
    pinned_gpus: tuple[str, ...] | None = None
    """GPUs the requester may be given (a device restriction); None: any."""
    node: str | None = None
    assigned_gpus: tuple[str, ...] | None = None
    """What the scheduler and device plugin gave it (what its SPI reports)."""
    gpu_uuids: tuple[str, ...] | None = None
    """What the controller learnt from its SPI and recorded on it."""
    started_s: float | None = None
    deleting: bool = False
    ready: bool = False
    actuated: bool = False
    ready_s: float | None = None
    """When readiness was last relayed to it."""
    pod_ready_s: float | None = None
    """When its Pod turned Ready: the kubelet's readiness probe saw the relayed readiness."""
    terminated: bool = False
    """Its container has stopped after the Pod was deleted (the kubelet's part of a deletion)."""
    errors: tuple[str, ...] = ()
    finalizer: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    _frozen: Requester | None = field(default=None, repr=False, compare=False)

    def as_requester(self) -> Requester:
        if self._frozen is not None:
            return self._frozen
        self._frozen = Requester(
            self.uid,
            self.name,
            self.node,
            self.gpu_uuids,
            None if self.isc_name else self.spec,
            self.isc_name,
            self.started_s,
            self.deleting,
            self.ready,
            self.actuated,
            self.finalizer,
            self.errors,
            self.labels,
        )
        return self._frozen


_NOT_VIEWED = frozenset({"_frozen", "_owner", "pinned"})
"""Fields of an instance its frozen view does not show."""


@dataclass(slots=True)
class SimInstance(_Viewed):
    instance_id: str
    spec: ServerSpec
    gpu_uuids: tuple[str, ...]
    state: InstanceState
    created_s: float
    last_used_s: float
    isc_name: str | None = None
    sleepable: bool = True
    pinned: bool = False
    """Its host buffers are page-locked already (it slept before): later sleeps skip that."""
    _frozen: Instance | None = field(default=None, repr=False, compare=False)
    """The last view handed out; reused until a field changes."""
    _owner: "SimProvider | None" = field(default=None, repr=False, compare=False)

    def __setattr__(self, name: str, value: object) -> None:
        object.__setattr__(self, name, value)
        if name not in _NOT_VIEWED:
            object.__setattr__(self, "_frozen", None)
            owner = getattr(self, "_owner", None)
            if owner is not None:
                object.__setattr__(owner, "_frozen", None)

    def as_instance(self) -> Instance:
        frozen = self._frozen
        if frozen is not None:
            return frozen
        frozen = Instance(
            self.instance_id,
            self.spec,
            self.gpu_uuids,
            self.state,
            self.created_s,
            self.last_used_s,
            self.isc_name,
            self.sleepable,
        )
        self._frozen = frozen
        return frozen


@dataclass(slots=True)
class SimProvider(_Viewed):
    name: str
    node: str
    kind: ProviderKind
    created_s: float
    instances: dict[str, SimInstance] = field(default_factory=dict)
    bound_requester_uid: str | None = None
    bound_instance_id: str | None = None
    path: ActuationPath | None = None
    bound_s: float | None = None
    deleting: bool = False
    ready: bool = True
    launcher_config: str | None = None
    template_hash: str | None = None
    ready_changed_s: float | None = None
    restarts: int = 0
    labels: dict[str, str] = field(default_factory=dict)
    routing: Routing | None = None
    max_instances: int | None = None
    """A launcher's instance cap, from its LauncherConfig when it was made (for the trace)."""
    deletion_reason: str | None = None
    _frozen: Provider | None = field(default=None, repr=False, compare=False)
    """The last view handed out, reused until a field, its instances or one of them changes."""

    def __post_init__(self) -> None:
        self.instances = _Instances(self, self.instances)

    def set_ready(self, ready: bool, now_s: float) -> None:
        if self.ready != ready:
            self.ready = ready
            self.ready_changed_s = now_s

    def as_provider(self) -> Provider:
        frozen = self._frozen
        if frozen is not None:
            return frozen
        instances = tuple([i.as_instance() for i in self.instances.values()])
        frozen = Provider(
            self.name,
            self.node,
            self.kind,
            self.created_s,
            instances,
            self.bound_requester_uid,
            self.bound_instance_id,
            self.path,
            self.bound_s,
            self.ready,
            self.deleting,
            self.launcher_config,
            self.template_hash,
            self.ready_changed_s,
            self.restarts,
            self.labels,
            self.routing,
        )
        self._frozen = frozen
        return frozen


@dataclass(slots=True)
class SimState:
    nodes: dict[str, SimNode] = field(default_factory=dict)
    requesters: dict[str, SimRequester] = field(default_factory=dict)
    providers: dict[str, SimProvider] = field(default_factory=dict)
    iscs: dict[str, IscSpec] = field(default_factory=Versioned)
    launcher_configs: dict[str, LauncherConfigSpec] = field(default_factory=Versioned)
    launcher_policy: dict[str, int] = field(default_factory=Versioned)
    """LauncherConfig name -> launchers wanted on every node (the population policy)."""
    _configs_seen: tuple[int, ...] = ()
    _configs_view: tuple[
        Mapping[str, IscSpec], Mapping[str, LauncherConfigSpec], Mapping[str, int]
    ] = ({}, {}, {})
    _requesters_on: dict[str, dict[str, SimRequester]] = field(default_factory=dict)
    _providers_on: dict[str, dict[str, SimProvider]] = field(default_factory=dict)
    """Per-node indexes, like an informer's node index: a snapshot costs the node, not the
    cluster. Kept in step by the methods below; insertion-ordered, so runs stay deterministic."""

    def __post_init__(self) -> None:
        for name in ("iscs", "launcher_configs", "launcher_policy"):
            if not isinstance(getattr(self, name), Versioned):
                setattr(self, name, Versioned(getattr(self, name)))

    def add_requester(self, requester: SimRequester) -> None:
        self.requesters[requester.uid] = requester
        if requester.node is not None:
            self._requesters_on.setdefault(requester.node, {})[requester.uid] = requester

    def place_requester(self, requester: SimRequester, node: str) -> None:
        requester.node = node
        self._requesters_on.setdefault(node, {})[requester.uid] = requester

    def remove_requester(self, uid: str) -> SimRequester | None:
        requester = self.requesters.pop(uid, None)
        if requester is not None and requester.node is not None:
            self._requesters_on.get(requester.node, {}).pop(uid, None)
        return requester

    def add_provider(self, provider: SimProvider) -> None:
        self.providers[provider.name] = provider
        self._providers_on.setdefault(provider.node, {})[provider.name] = provider

    def remove_provider(self, name: str) -> SimProvider | None:
        provider = self.providers.pop(name, None)
        if provider is not None:
            self._providers_on.get(provider.node, {}).pop(name, None)
        return provider

    def requesters_on(self, node: str) -> list[SimRequester]:
        return list(self._requesters_on.get(node, {}).values())

    def providers_on(self, node: str) -> list[SimProvider]:
        return list(self._providers_on.get(node, {}).values())

    # --- the ClusterReader port (fma.control.ports) ------------------------------------------

    def node_names(self) -> list[str]:
        return list(self.nodes)

    def snapshot(self, node_name: str) -> NodeSnapshot:
        """What the controller's informers show of one node (pure read of the state). A
        NotReady node is shown as such; only a deleted Node is absent."""
        node = self.nodes.get(node_name)
        iscs, launcher_configs, launcher_policy = self._configs()
        requesters = self._requesters_on.get(node_name)
        providers = self._providers_on.get(node_name)
        return NodeSnapshot(
            node_name,
            node.as_node() if node is not None else None,
            tuple([r.as_requester() for r in requesters.values()]) if requesters else (),
            tuple([p.as_provider() for p in providers.values()]) if providers else (),
            iscs,
            launcher_configs,
            launcher_policy,
        )

    def _configs(
        self,
    ) -> tuple[Mapping[str, IscSpec], Mapping[str, LauncherConfigSpec], Mapping[str, int]]:
        """Copies of the configuration maps, shared by every snapshot until one changes."""
        seen = (
            getattr(self.iscs, "version", 0),
            getattr(self.launcher_configs, "version", 0),
            getattr(self.launcher_policy, "version", 0),
        )
        if seen != self._configs_seen:
            self._configs_seen = seen
            self._configs_view = (
                dict(self.iscs),
                dict(self.launcher_configs),
                dict(self.launcher_policy),
            )
        return self._configs_view

    def config_snapshot(self) -> ConfigSnapshot:
        return ConfigSnapshot(dict(self.iscs), dict(self.launcher_configs))

    def resync(self, key: str) -> None:
        """Nothing is cached between the simulator's state and its snapshots."""
