"""Gathering: the operator's :class:`~fma.control.ports.ClusterReader`, a snapshot from memory.

:class:`K8sReader` builds a node's :class:`~fma.core.model.NodeSnapshot` from what the
operator already holds — the :class:`~fma.adapters.k8s.store.ObjectStore` of watched objects
and the books of what it learnt by asking (:class:`~fma.adapters.k8s.engines.EngineBook`,
:class:`~fma.adapters.k8s.observed.ReportBook`, ``GpuBook``, ``Relays``) — through the pure
views of :mod:`fma.adapters.k8s.views`. It never waits on the network and never sleeps: a
reconcile gathers one node in memory.

Each object is parsed once per version: what depends on an object alone (a Pod's facts, a
requester's rendered server patch, a configuration object's checks) is cached under its kind,
name, UID and resourceVersion, and replaced when a newer version is seen or dropped when the
object is gone. What changes while the object does not — a launcher's instances, the engine
phases, relayed readiness, reported GPUs, the ``gpu-map`` — is read afresh on every snapshot.

A cache is either replaced whole or changed one key at a time, and never iterated while it
may change, so two workers may gather different nodes at the same time.
"""

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from fma.adapters.k8s.engines import EngineBook
from fma.adapters.k8s.observed import GpuBook, Relays, ReportBook
from fma.adapters.k8s.store import Kind, Obj, ObjectStore, name_of, pod_node, resource_version
from fma.adapters.k8s.store import uid_of as uid_of_object
from fma.adapters.k8s.views import (
    GpuMap,
    ParsedIsc,
    PodRole,
    ProviderFacts,
    RequesterFacts,
    isc_view,
    launcher_config_view,
    node_allocatable,
    node_view,
    parse_gpu_map,
    parse_isc,
    pod_role,
    population_policy_view,
    provider_facts,
    provider_view,
    render_direct,
    report_is_current,
    requester_facts,
    requester_view,
    status_errors,
)
from fma.api.constants import CONFIGMAP_GPU_MAP
from fma.control.reconcile import CONFIGS
from fma.core import population
from fma.core.model import (
    ConfigProblems,
    ConfigSnapshot,
    IscSpec,
    LauncherConfigSpec,
    Node,
    NodeSnapshot,
    Provider,
    Requester,
    ServerSpec,
)
from fma.core.population import PopulationPolicy

T = TypeVar("T")
Version = tuple[str, str]
"""An object's UID and resourceVersion: a new UID is another object of the same name."""


_RenderKey = tuple[str, tuple[int, ...], tuple[int, ...]]


def _version(obj: Obj) -> Version:
    return uid_of_object(obj), resource_version(obj)


@dataclass(frozen=True)
class GatherSettings:
    gpu_memory_bytes_default: int
    """One GPU's memory when its Node has no ``nvidia.com/gpu.memory`` label."""


@dataclass(slots=True)
class _Parsed(Generic[T]):
    """What was parsed of one version of an object."""

    version: Version
    value: T


@dataclass(slots=True)
class _PodEntry:
    """One version of a Pod: its role, its facts, and its direct spec rendered per (node, GPU
    indices, GPU memory): the costly part, which depends on nothing else."""

    version: Version
    role: PodRole
    facts: RequesterFacts | ProviderFacts | None
    renders: dict[_RenderKey, ServerSpec | str] = field(default_factory=dict)

    def render(
        self,
        facts: RequesterFacts,
        node: str,
        indices: tuple[int, ...],
        gpu_memory: tuple[int, ...],
    ) -> ServerSpec | str:
        key = (node, indices, gpu_memory)
        rendered = self.renders.get(key)
        if rendered is None:
            rendered = self.renders[key] = render_direct(facts, node, indices, gpu_memory)
        return rendered


@dataclass(slots=True)
class _IscEntry:
    """One version of an InferenceServerConfig, and its spec per GPU memory size."""

    version: Version
    parsed: ParsedIsc
    specs: dict[int, IscSpec] = field(default_factory=dict)

    def spec(self, gpu_memory_bytes: int) -> IscSpec:
        isc = self.specs.get(gpu_memory_bytes)
        if isc is None:
            isc = self.specs[gpu_memory_bytes] = isc_view(
                self.parsed, gpu_memory_bytes=gpu_memory_bytes
            )
        return isc


@dataclass(frozen=True, slots=True)
class _NodeEntry:
    version: Version
    gpu_map_version: Version | None
    node: Node
    allocatable: Mapping[str, float]


@dataclass(frozen=True, slots=True)
class _GpuMap:
    version: Version | None
    """None: there is no ``gpu-map`` ConfigMap."""
    entries: GpuMap | None
    problems: tuple[str, ...]


class K8sReader:
    """The :class:`~fma.control.ports.ClusterReader` over the store and the books."""

    def __init__(
        self,
        store: ObjectStore,
        engines: EngineBook,
        reports: ReportBook,
        gpus: GpuBook,
        relays: Relays,
        settings: GatherSettings,
    ) -> None:
        self._store = store
        self._engines = engines
        self._reports = reports
        self._gpus = gpus
        self._relays = relays
        self._settings = settings
        self._pods: dict[str, dict[str, _PodEntry]] = {}
        """Node name -> Pod name -> the Pod's latest parsed version."""
        self._nodes: dict[str, _NodeEntry] = {}
        self._gpu_map = _GpuMap(None, None, ())
        self._iscs: dict[str, _IscEntry] = {}
        self._launcher_configs: dict[str, _Parsed[LauncherConfigSpec]] = {}
        self._policies: dict[str, _Parsed[tuple[PopulationPolicy | None, tuple[str, ...]]]] = {}
        self._requester_problems: dict[str, dict[str, tuple[str, ...]]] = {}

    # --- the ClusterReader port ----------------------------------------------------------------

    def node_names(self) -> list[str]:
        """Every node known: those with a Node object, and those Pods still run on or are
        pinned to after their Node went (their requesters and providers need reconciling)."""
        names = set(self._store.node_names())
        for pod in self._store.all(Kind.POD).values():
            node = pod_node(pod)
            if node:
                names.add(node)
        return sorted(names)

    def snapshot(self, node_name: str) -> NodeSnapshot:
        """The node's snapshot: its Node (None when the object is gone), the requesters
        scheduled on it (or pinned to it and not scheduled yet), the providers placed on it,
        every InferenceServerConfig (its weights bounded by this node's GPU memory) and
        LauncherConfig, and the launcher counts the valid population policies ask of it."""
        gpu_map = self._current_gpu_map()
        node_obj = self._store.get(Kind.NODE, node_name)
        node: Node | None = None
        allocatable: Mapping[str, float] = {}
        if node_obj is not None:
            entry = self._node(node_name, node_obj, gpu_map)
            node, allocatable = entry.node, entry.allocatable
        gpu_memory = (
            node.gpus[0].memory_bytes
            if node is not None and node.gpus
            else self._settings.gpu_memory_bytes_default
        )
        iscs = self._current_iscs(gpu_memory)
        launcher_configs = self._current_launcher_configs()
        counts = (
            population.policy_counts(self._current_policies(), node, allocatable)
            if node is not None
            else {}
        )
        requesters, providers = self._pods_on(node_name, node, gpu_map, iscs)
        return NodeSnapshot(
            node_name,
            node,
            requesters,
            providers,
            iscs,
            launcher_configs,
            counts,
        )

    def config_snapshot(self) -> ConfigSnapshot:
        """Every InferenceServerConfig (weights bounded by the default GPU memory),
        LauncherConfig and LauncherPopulationPolicy."""
        self._current_policies()
        policies = {
            name: ConfigProblems(entry.value[1], status_errors(obj))
            for name, entry in self._policies.items()
            if (obj := self._store.get(Kind.POPULATION_POLICY, name)) is not None
        }
        return ConfigSnapshot(
            self._current_iscs(self._settings.gpu_memory_bytes_default),
            self._current_launcher_configs(),
            policies,
        )

    def resync(self, key: str) -> None:
        """Forget what was parsed for ``key`` (a node: its Node and Pods; :data:`CONFIGS`:
        the configuration objects), so that it is parsed again from the store. Nothing else
        is cached between the store and a snapshot."""
        if key == CONFIGS:
            self._iscs = {}
            self._launcher_configs = {}
            self._policies = {}
            return
        self._pods.pop(key, None)
        self._nodes.pop(key, None)

    # --- what the snapshot cannot carry ----------------------------------------------------------

    def unsynced_launchers(self, node_name: str) -> tuple[str, ...]:
        """Launchers on the node that answer (Ready, with an IP) but whose instance list has
        not arrived from their watch stream yet — after a restart of the operator, or of the
        launcher. A snapshot would show them empty, and a decision could take a bound
        instance for gone: the node waits for them (the stream's first list re-queues it)."""
        cached = self._pods.get(node_name, {})
        waiting = []
        for pod in self._store.pods_on(node_name):
            facts = self._pod_entry(pod, cached.get(name_of(pod))).facts
            if not isinstance(facts, ProviderFacts) or facts.direct is not None:
                continue
            launcher = facts.provider
            if launcher.node != node_name or launcher.deleting or not launcher.ready:
                continue
            if launcher.ip and not report_is_current(facts, self._reports.report(launcher.name)):
                waiting.append(launcher.name)
        return tuple(sorted(waiting))

    def requester_problems(self, node_name: str) -> Mapping[str, tuple[str, ...]]:
        """Requester UID -> the problems with its own input (a bad server patch,
        ``admin-port`` or ``weights-size``; GPUs without indices) that the latest snapshot
        of ``node_name`` found; requesters without any are left out."""
        return self._requester_problems.get(node_name, {})

    def gpu_map_problems(self) -> tuple[str, ...]:
        """The ``gpu-map`` entries that cannot be read, as of the latest snapshot."""
        return self._gpu_map.problems

    def policy_problems(self) -> Mapping[str, tuple[str, ...]]:
        """LauncherPopulationPolicy name -> why it is not used, as of the latest snapshot."""
        return {name: p.value[1] for name, p in self._policies.items() if p.value[1]}

    # --- Pods ----------------------------------------------------------------------------------

    def _pods_on(
        self,
        node_name: str,
        node: Node | None,
        gpu_map: _GpuMap,
        iscs: Mapping[str, IscSpec],
    ) -> tuple[tuple[Requester, ...], tuple[Provider, ...]]:
        cached = self._pods.get(node_name, {})
        seen: dict[str, _PodEntry] = {}
        requesters: list[Requester] = []
        providers: list[Provider] = []
        problems: dict[str, tuple[str, ...]] = {}
        default_memory = self._settings.gpu_memory_bytes_default
        for pod in self._store.pods_on(node_name):
            entry = self._pod_entry(pod, cached.get(name_of(pod)))
            seen[name_of(pod)] = entry
            facts = entry.facts
            if isinstance(facts, RequesterFacts):
                if facts.node not in (None, node_name):
                    continue
                view = requester_view(
                    facts,
                    node=node,
                    gpu_map=gpu_map.entries,
                    reported_gpus=self._gpus.gpus(facts.uid),
                    relays=self._relays,
                    gpu_memory_bytes_default=default_memory,
                    render=entry.render,
                )
                requesters.append(view.requester)
                if view.problems:
                    problems[facts.uid] = view.problems
            elif isinstance(facts, ProviderFacts):
                if facts.provider.node != node_name:
                    continue
                providers.append(
                    provider_view(
                        facts,
                        node=node,
                        report=self._reports.report(facts.provider.name),
                        engines=self._engines,
                        iscs=iscs,
                        gpu_memory_bytes_default=default_memory,
                    )
                )
        self._pods[node_name] = seen
        self._requester_problems[node_name] = problems
        requesters.sort(key=lambda r: r.name)
        providers.sort(key=lambda p: p.name)
        return tuple(requesters), tuple(providers)

    @staticmethod
    def _pod_entry(pod: Obj, cached: _PodEntry | None) -> _PodEntry:
        version = _version(pod)
        if cached is not None and cached.version == version:
            return cached
        role = pod_role(pod)
        facts: RequesterFacts | ProviderFacts | None
        if role is PodRole.REQUESTER:
            facts = requester_facts(pod)
        elif role in (PodRole.LAUNCHER, PodRole.DIRECT):
            facts = provider_facts(pod)
        else:
            facts = None
        return _PodEntry(version, role, facts)

    # --- Nodes and the gpu-map -----------------------------------------------------------------

    def _current_gpu_map(self) -> _GpuMap:
        configmap = self._store.get(Kind.CONFIGMAP, CONFIGMAP_GPU_MAP)
        version = _version(configmap) if configmap is not None else None
        if version != self._gpu_map.version:
            if configmap is None:
                self._gpu_map = _GpuMap(None, None, ())
            else:
                entries, problems = parse_gpu_map(configmap)
                self._gpu_map = _GpuMap(version, entries, problems)
        return self._gpu_map

    def _node(self, name: str, obj: Obj, gpu_map: _GpuMap) -> _NodeEntry:
        version = _version(obj)
        cached = self._nodes.get(name)
        if cached is not None and (cached.version, cached.gpu_map_version) == (
            version,
            gpu_map.version,
        ):
            return cached
        node = node_view(
            obj,
            (gpu_map.entries or {}).get(name, {}),
            gpu_memory_bytes_default=self._settings.gpu_memory_bytes_default,
        )
        entry = _NodeEntry(version, gpu_map.version, node, node_allocatable(obj))
        self._nodes[name] = entry
        return entry

    # --- configuration objects -----------------------------------------------------------------

    def _current_iscs(self, gpu_memory_bytes: int) -> dict[str, IscSpec]:
        entries = _refreshed(
            self._store.all(Kind.ISC).values(),
            self._iscs,
            lambda version, obj: _IscEntry(version, parse_isc(obj)),
        )
        self._iscs = entries
        return {name: entry.spec(gpu_memory_bytes) for name, entry in sorted(entries.items())}

    def _current_launcher_configs(self) -> dict[str, LauncherConfigSpec]:
        entries = _refreshed(
            self._store.all(Kind.LAUNCHER_CONFIG).values(),
            self._launcher_configs,
            lambda version, obj: _Parsed(version, launcher_config_view(obj)),
        )
        self._launcher_configs = entries
        return {name: entry.value for name, entry in sorted(entries.items())}

    def _current_policies(self) -> list[PopulationPolicy]:
        """The valid population policies. One whose LauncherConfig is missing or invalid
        still counts: the core keeps hands off such a LauncherConfig itself."""
        entries = _refreshed(
            self._store.all(Kind.POPULATION_POLICY).values(),
            self._policies,
            lambda version, obj: _Parsed(version, population_policy_view(obj)),
        )
        self._policies = entries
        return [
            policy for _, entry in sorted(entries.items()) if (policy := entry.value[0]) is not None
        ]


class _Versioned(Protocol):
    @property
    def version(self) -> Version: ...


E = TypeVar("E", bound=_Versioned)


def _refreshed(
    objects: Iterable[Obj], cached: Mapping[str, E], parse: Callable[[Version, Obj], E]
) -> dict[str, E]:
    """A new cache of ``objects`` by name: the cached entry where its version is current, a
    freshly parsed one otherwise. Entries of objects that are gone are left behind."""
    entries: dict[str, E] = {}
    for obj in objects:
        version = _version(obj)
        entry = cached.get(name_of(obj))
        if entry is None or entry.version != version:
            entry = parse(version, obj)
        entries[name_of(obj)] = entry
    return entries
