"""Snapshot types: what the decisions see of the cluster.

An adapter (the simulator or the Kubernetes operator) gathers one :class:`NodeSnapshot` per
reconcile; the decisions in :mod:`fma.core.dualpods` read it and return actions. Everything here
is a frozen value: decisions never mutate what they were given, and two equal snapshots always
give the same plan.

Memory is in bytes and time in seconds (``_s``) since the Unix epoch in the operator (Kubernetes
timestamps are wall-clock) and since the start of the run in the simulator. A snapshot carries
what a real cluster shows — Pod UIDs, resourceVersions, IPs, labels, finalizers, restart
counts — so that an executor can apply a plan with preconditions, and the controller's own
memory (actuation path, bound time, last use, "actuation recorded"), which lives in the
cluster as annotations (:mod:`fma.api.constants`) so that a restarted controller decides as
before.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

GIB_BYTES = 1024**3


class ActuationPath(StrEnum):
    """How a requester was served; one vocabulary across sim, operator and reports."""

    HOT = "hot"
    """A sleeping instance with the requester's identity was woken."""
    WARM = "warm"
    """An existing launcher created a new instance."""
    COLD_LAUNCHER = "cold_launcher"
    """A new launcher Pod had to be created first."""
    COLD = "cold"
    """No launcher and nothing to wake: a provider started from scratch."""


class InstanceState(StrEnum):
    """Lifecycle of one vLLM instance, as the controller knows it.

    ``WAKING`` and ``FALLING_ASLEEP`` are in flight: vLLM's ``POST /wake_up`` and ``POST
    /sleep`` return only once the weights have moved, so a wake or a sleep stays in flight
    until its end is observed, and decisions wait for it rather than act twice. ``STOPPING``
    is a deletion under way.
    """

    STARTING = "starting"
    """Created; the engine is loading and does not answer yet."""
    AWAKE = "awake"
    """Serving, weights on the GPUs."""
    WAKING = "waking"
    """A wake was started and its end not yet observed: weights on their way to the GPUs."""
    FALLING_ASLEEP = "falling_asleep"
    """A sleep was started and its end not yet observed: weights on their way to host memory."""
    SLEEPING = "sleeping"
    """Level-1 sleep: weights in host memory, GPUs (almost) free."""
    STOPPING = "stopping"
    """A delete was started: the engine is being stopped (SIGTERM, grace, SIGKILL) and holds
    its GPUs until it is seen gone."""
    STOPPED = "stopped"
    """The process exited (crash or stop); it stays listed until deleted."""

    @property
    def on_gpus(self) -> bool:
        """Whether the instance holds its GPUs' memory (loading, serving, or moving weights)."""
        return self in _ON_GPUS

    @property
    def in_flight(self) -> bool:
        return self in (InstanceState.WAKING, InstanceState.FALLING_ASLEEP)


_ON_GPUS = frozenset(
    {
        InstanceState.STARTING,
        InstanceState.AWAKE,
        InstanceState.WAKING,
        InstanceState.FALLING_ASLEEP,
        InstanceState.STOPPING,
    }
)


class ProviderKind(StrEnum):
    DIRECT = "direct"
    """A vLLM Pod rendered from the requester's server patch (one instance, fixed GPUs)."""
    LAUNCHER = "launcher"
    """A launcher Pod that runs instances on demand."""


# The members decisions compare against in their loops, as module names: on CPython 3.11 a
# member read through its class goes through the enum metaclass's attribute hook every time,
# several times slower than a module name.
STARTING: Final = InstanceState.STARTING
AWAKE: Final = InstanceState.AWAKE
WAKING: Final = InstanceState.WAKING
FALLING_ASLEEP: Final = InstanceState.FALLING_ASLEEP
SLEEPING: Final = InstanceState.SLEEPING
STOPPING: Final = InstanceState.STOPPING
STOPPED: Final = InstanceState.STOPPED
DIRECT: Final = ProviderKind.DIRECT
LAUNCHER: Final = ProviderKind.LAUNCHER


@dataclass(frozen=True, slots=True)
class Gpu:
    uuid: str
    index: int
    memory_bytes: int


DISK_BYTES_PER_S_DEFAULT = 2.0e9
"""Weights load rate used to price a cold start when a node does not say (a local NVMe)."""
H2D_BYTES_PER_S_DEFAULT = 24.8e9
"""Host-to-device rate of a wake when a node does not say (vLLM's observed rate on PCIe Gen5)."""


@dataclass(frozen=True, slots=True)
class Node:
    """A Node as the decisions see it. ``ready`` False is a NotReady Node (the kubelet stopped
    reporting): its Pods may well still run, so nothing is given up on it for that alone.
    The transfer rates price a cold start against a wake (:func:`fma.core.sleepers.keep_value`)."""

    name: str
    gpus: tuple[Gpu, ...]
    host_memory_bytes: int
    schedulable: bool = True
    ready: bool = True
    labels: Mapping[str, str] = field(default_factory=dict)
    disk_bytes_per_s: float = DISK_BYTES_PER_S_DEFAULT
    h2d_bytes_per_s: float = H2D_BYTES_PER_S_DEFAULT

    def gpu(self, uuid: str) -> Gpu | None:
        """The GPU with ``uuid`` on this node, or None when it is not here."""
        return next((g for g in self.gpus if g.uuid == uuid), None)


GPU_MEMORY_UTILIZATION_DEFAULT = 0.9
"""vLLM's default ``--gpu-memory-utilization``."""


@dataclass(frozen=True, slots=True)
class ServerSpec:
    """What a requester asks to run, independent of where: the identity of an inference server.

    For the direct path it comes from the rendered server patch; for the launcher path from the
    InferenceServerConfig. ``weights_bytes`` is the model's total tensor size, split evenly over
    the GPUs; it prices sleeping memory and wake time. Adapters always fill it: the operator
    from the InferenceServerConfig's ``weightsSize`` (or the requester's ``weights-size``
    annotation), and when neither says, with the upper bound ``gpu_memory_utilization`` x GPU
    memory x GPUs, so that the budget errs on the safe side instead of turning off.
    ``gpu_memory_utilization`` is the share of each GPU's memory an awake engine claims at start
    (weights and KV cache: vLLM's ``--gpu-memory-utilization``).
    """

    model: str
    port: int
    options: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    weights_bytes: int = 0
    engine_init_s: float = 20.0
    gpu_memory_utilization: float = GPU_MEMORY_UTILIZATION_DEFAULT


@dataclass(frozen=True, slots=True)
class Routing:
    """An InferenceServerConfig's routing labels and annotations, put on the launcher Pod that
    serves it while its instance is awake (so an endpoint picker sees only awake instances)."""

    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.labels or self.annotations)


@dataclass(frozen=True, slots=True)
class Requester:
    """A server-requesting Pod.

    ``gpu_uuids`` is None until its SPI reported the GPUs the kubelet assigned (and the
    controller recorded them on the Pod). ``isc_name`` marks the launcher path, ``spec``
    without it the direct path. ``ready`` is the readiness the requester currently reports, as
    relayed. ``finalizer`` says whether FMA's requester finalizer is on it; ``errors`` is the
    status FMA last wrote on it; ``labels`` its labels (FMA's ``dual`` and ``instance`` among
    them). ``ip``, ``spi_port`` and ``resource_version`` are for the executor.
    """

    uid: str
    name: str
    node: str | None
    gpu_uuids: tuple[str, ...] | None
    spec: ServerSpec | None
    isc_name: str | None = None
    started_s: float | None = None
    deleting: bool = False
    ready: bool = False
    actuated: bool = False
    """The first readiness relay (the actuation) has been recorded on the requester."""
    finalizer: bool = False
    errors: tuple[str, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    ip: str | None = None
    spi_port: int = 8081
    resource_version: str = ""
    problems: tuple[str, ...] = ()
    """What is wrong with the requester's own input, found when its Pod was read (a server
    patch that does not render, an unreadable annotation): it is not served until they are
    fixed, and they are its status."""


@dataclass(frozen=True, slots=True)
class Instance:
    """One vLLM process: the single one of a direct provider, or one of a launcher's.

    ``last_used_s`` is refreshed when it is woken and when it is put to sleep (it was used
    until then). ``sleepable`` is False once its engine refused to sleep (vLLM on a CPU, or
    without sleep mode): it is then deleted rather than kept.
    """

    instance_id: str
    spec: ServerSpec
    gpu_uuids: tuple[str, ...]
    state: InstanceState
    created_s: float
    last_used_s: float
    isc_name: str | None = None
    sleepable: bool = True

    @property
    def bytes_per_gpu(self) -> int:
        return self.spec.weights_bytes // max(1, len(self.gpu_uuids))


@dataclass(frozen=True, slots=True)
class Provider:
    """A server-providing Pod: a direct vLLM Pod or a launcher Pod.

    ``bound_requester_uid`` is the binding record; ``bound_instance_id`` names the instance that
    serves the bound requester. ``path`` is the actuation path decided when it was bound, kept
    on the Pod so that a restarted controller classifies the actuation the same way.
    ``ready_changed_s`` is when its Ready condition last changed (creation if it never did):
    "stuck" is measured from there, not from creation. ``routing`` is the routing metadata
    applied to it now (None: none). ``uid``, ``resource_version``, ``ip`` and ``port`` (the
    launcher's or the direct engine's) are for the executor.
    """

    name: str
    node: str
    kind: ProviderKind
    created_s: float
    instances: tuple[Instance, ...] = ()
    bound_requester_uid: str | None = None
    bound_instance_id: str | None = None
    path: ActuationPath | None = None
    bound_s: float | None = None
    ready: bool = True
    deleting: bool = False
    launcher_config: str | None = None
    template_hash: str | None = None
    ready_changed_s: float | None = None
    restarts: int = 0
    labels: Mapping[str, str] = field(default_factory=dict)
    routing: Routing | None = None
    uid: str = ""
    resource_version: str = ""
    ip: str | None = None
    port: int | None = None

    def instance(self, instance_id: str | None) -> Instance | None:
        for i in self.instances:
            if i.instance_id == instance_id:
                return i
        return None

    @property
    def bound(self) -> bool:
        return self.bound_requester_uid is not None

    def not_ready_for_s(self, now_s: float) -> float:
        """How long it has been not Ready (0 while Ready)."""
        if self.ready:
            return 0.0
        since_s = self.ready_changed_s if self.ready_changed_s is not None else self.created_s
        return max(0.0, now_s - since_s)


@dataclass(frozen=True, slots=True)
class IscSpec:
    """The parts of an InferenceServerConfig the decisions use.

    ``problems`` are what is wrong with the object itself (found when it was read); ``errors``
    is the status the controller last wrote on it.
    """

    name: str
    spec: ServerSpec
    launcher_config: str
    routing: Routing = field(default_factory=Routing)
    problems: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class LauncherConfigSpec:
    """A LauncherConfig as the decisions see it; ``problems`` say why its template is unusable
    (none: valid); ``errors`` is the status the controller last wrote on it."""

    name: str
    max_instances: int
    template_hash: str
    problems: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()

    @property
    def valid(self) -> bool:
        return not self.problems


@dataclass(frozen=True, slots=True)
class NodeSnapshot:
    """Everything one node's reconcile reads. ``node`` is None when the Node object is gone."""

    node_name: str
    node: Node | None
    requesters: tuple[Requester, ...] = ()
    providers: tuple[Provider, ...] = ()
    iscs: Mapping[str, IscSpec] = field(default_factory=dict)
    launcher_configs: Mapping[str, LauncherConfigSpec] = field(default_factory=dict)
    launcher_policy: Mapping[str, int] = field(default_factory=dict)
    """LauncherConfig name -> launchers the population policies want on this node."""

    def providers_bound_to(self, requester_uid: str) -> list[Provider]:
        """The providers bound to ``requester_uid``, the one that serves it first.

        There should be one at most; a stale cache or a lost write can make two. The one that
        serves is the one whose bound instance holds the GPUs, else the one bound first (then
        by name); the others are duplicates to release.
        """
        bound = [p for p in self.providers if p.bound_requester_uid == requester_uid]
        if len(bound) > 1:
            bound.sort(key=_serving_first)
        return bound

    def provider_bound_to(self, requester_uid: str) -> Provider | None:
        """The provider that serves ``requester_uid`` (see :meth:`providers_bound_to`)."""
        bound = self.providers_bound_to(requester_uid)
        return bound[0] if bound else None


def _serving_first(provider: Provider) -> tuple[bool, float, str]:
    instance = provider.instance(provider.bound_instance_id)
    serving = instance is not None and instance.state.on_gpus
    bound_s = provider.bound_s if provider.bound_s is not None else provider.created_s
    return (not serving, bound_s, provider.name)


@dataclass(frozen=True, slots=True)
class ConfigProblems:
    """A configuration object known only by its problems: those found when it was read, and
    the errors its status shows now."""

    problems: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ConfigSnapshot:
    """The configuration objects, for the decisions about their own status."""

    iscs: Mapping[str, IscSpec] = field(default_factory=dict)
    launcher_configs: Mapping[str, LauncherConfigSpec] = field(default_factory=dict)
    population_policies: Mapping[str, ConfigProblems] = field(default_factory=dict)
