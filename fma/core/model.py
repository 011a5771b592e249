"""Snapshot types: what the decisions see of the cluster.

An adapter (the simulator or the Kubernetes operator) gathers one :class:`NodeSnapshot` per
reconcile; the decisions in :mod:`fma.core.dualpods` read it and return actions. Everything here
is a frozen value: decisions never mutate what they were given, and two equal snapshots always
give the same plan.

Memory is in bytes and time in seconds (``_s``) of the adapter's :class:`~fma.core.ports.Clock`.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

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
    """Lifecycle of one vLLM instance, as the controller knows it."""

    STARTING = "starting"
    """Created; the engine is loading and does not answer yet."""
    AWAKE = "awake"
    """Serving, weights on the GPUs."""
    SLEEPING = "sleeping"
    """Level-1 sleep: weights in host memory, GPUs (almost) free."""
    STOPPED = "stopped"
    """The process exited (crash or stop); it stays listed until deleted."""


class ProviderKind(StrEnum):
    DIRECT = "direct"
    """A vLLM Pod rendered from the requester's server patch (one instance, fixed GPUs)."""
    LAUNCHER = "launcher"
    """A launcher Pod that runs instances on demand."""


@dataclass(frozen=True, slots=True)
class Gpu:
    uuid: str
    index: int
    memory_bytes: int


@dataclass(frozen=True, slots=True)
class Node:
    name: str
    gpus: tuple[Gpu, ...]
    host_memory_bytes: int
    schedulable: bool = True
    ready: bool = True
    labels: Mapping[str, str] = field(default_factory=dict)

    def gpu(self, uuid: str) -> Gpu | None:
        """The GPU with ``uuid`` on this node, or None when it is not here."""
        return next((g for g in self.gpus if g.uuid == uuid), None)


@dataclass(frozen=True, slots=True)
class ServerSpec:
    """What a requester asks to run, independent of where: the identity of an inference server.

    For the direct path it comes from the rendered server patch; for the launcher path from the
    InferenceServerConfig. ``weights_bytes`` is the model's total tensor size, split evenly over
    the GPUs; it prices sleeping memory and wake time.
    """

    model: str
    port: int
    options: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    weights_bytes: int = 0
    engine_init_s: float = 20.0


@dataclass(frozen=True, slots=True)
class Requester:
    """A server-requesting Pod.

    ``gpu_uuids`` is None until its SPI reported the GPUs the kubelet assigned.
    ``isc_name`` marks the launcher path, ``spec`` without it the direct path.
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
    """The first readiness relay (the actuation) has been recorded."""


@dataclass(frozen=True, slots=True)
class Instance:
    """One vLLM process: the single one of a direct provider, or one of a launcher's."""

    instance_id: str
    spec: ServerSpec
    gpu_uuids: tuple[str, ...]
    state: InstanceState
    created_s: float
    last_used_s: float
    isc_name: str | None = None

    @property
    def bytes_per_gpu(self) -> int:
        return self.spec.weights_bytes // max(1, len(self.gpu_uuids))


@dataclass(frozen=True, slots=True)
class Provider:
    """A server-providing Pod: a direct vLLM Pod or a launcher Pod.

    ``bound_requester_uid`` is the binding record; ``bound_instance_id`` names the instance that
    serves the bound requester. ``path`` is the actuation path decided when it was bound, kept
    on the Pod so that a restarted controller classifies the actuation the same way.
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

    def instance(self, instance_id: str | None) -> Instance | None:
        return next((i for i in self.instances if i.instance_id == instance_id), None)

    @property
    def bound(self) -> bool:
        return self.bound_requester_uid is not None


@dataclass(frozen=True, slots=True)
class IscSpec:
    """The parts of an InferenceServerConfig the decisions use."""

    name: str
    spec: ServerSpec
    launcher_config: str


@dataclass(frozen=True, slots=True)
class LauncherConfigSpec:
    """A LauncherConfig as the decisions see it; ``valid`` is False when its template is bad."""

    name: str
    max_instances: int
    template_hash: str
    valid: bool = True


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

    def provider_bound_to(self, requester_uid: str) -> Provider | None:
        return next((p for p in self.providers if p.bound_requester_uid == requester_uid), None)
