"""Raw Kubernetes objects as the core sees them: Pods, Nodes and FMA's custom resources made
into the snapshot types of :mod:`fma.core.model`.

Everything here is a pure function of its arguments: objects are the dicts the API server
returns (never changed), the operator's own knowledge (:mod:`.engines`, :mod:`.observed`) is
passed in, times are read from the objects (RFC 3339 made Unix seconds), and nothing reads a
clock or the network. Bad input never raises: a field that cannot be read takes its
documented default, and what a user must fix is returned as a problem, one line naming the
field.

The work is split so that a caller can keep what depends on an object alone (its *facts*,
parsed once per resourceVersion) apart from what changes while the object does not: a
launcher's instance list, the operator's notes of engine phases, the readiness it relayed,
the GPUs a requester reported, the ``gpu-map``.

- Pods: :func:`pod_role` classifies them as upstream does; :func:`requester_facts` and
  :func:`requester_view` make a :class:`~fma.core.model.Requester`, :func:`provider_facts` and
  :func:`provider_view` a :class:`~fma.core.model.Provider` with its instances.
- Nodes: :func:`parse_gpu_map` reads the ``gpu-map`` ConfigMap, :func:`node_view` makes a
  :class:`~fma.core.model.Node`, :func:`node_allocatable` its allocatable resources.
- Configuration: :func:`parse_isc` and :func:`isc_view` (an
  :class:`~fma.core.model.IscSpec`), :func:`launcher_config_view`,
  :func:`population_policy_view`.
"""

import dataclasses
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final

from pydantic import ValidationError

from fma.adapters.k8s.engines import EngineBook
from fma.adapters.k8s.observed import LauncherReport, Relays, container_run
from fma.adapters.k8s.render.direct import (
    direct_engine_port,
    direct_server_spec,
    served_model,
)
from fma.adapters.k8s.render.errors import RenderError, key_path
from fma.adapters.k8s.render.flags import (
    MODEL_FLAGS,
    PORT_FLAGS,
    flag_value,
    gpu_memory_utilization,
)
from fma.adapters.k8s.render.launcher import launcher_template_hash, launcher_template_problems
from fma.adapters.k8s.render.podspec import find_container
from fma.adapters.k8s.render.routing import applied_routing, routing_of, routing_problems
from fma.adapters.k8s.render.specs import UNKNOWN_MODEL, isc_server_spec
from fma.adapters.k8s.store import Obj, name_of, resource_version, uid_of
from fma.api.constants import (
    ANN_ACCELERATORS,
    ANN_ACTUATED,
    ANN_ACTUATION_PATH,
    ANN_ADMIN_PORT,
    ANN_BOUND_AT,
    ANN_INFERENCE_SERVER_CONFIG,
    ANN_INSTANCE_ID,
    ANN_INSTANCES_LAST_USED,
    ANN_LAUNCHER_TEMPLATE_HASH,
    ANN_NOMINAL,
    ANN_REQUESTER,
    ANN_SERVER_PATCH,
    ANN_SLEEP_REFUSED,
    ANN_STATUS,
    ANN_WEIGHTS_SIZE,
    CONTAINER_INFERENCE_SERVER,
    ENV_CUDA_VISIBLE_DEVICES,
    FINALIZER_REQUESTER,
    LABEL_GPU_MEMORY,
    LABEL_HOSTNAME,
    LABEL_LAUNCHER_CONFIG_NAME,
    LAUNCHER_PORT,
    REQUESTER_SPI_PORT,
    VLLM_CONFIG_INFERENCE_PORT,
    VLLM_CONFIG_ISC_NAME,
)
from fma.api.crds import InferenceServerConfig, LauncherConfig, LauncherPopulationPolicy
from fma.api.loading import describe
from fma.api.quantity import parse_quantity, quantity_bytes
from fma.core import gpumap
from fma.core.identity import instance_id
from fma.core.model import (
    GPU_MEMORY_UTILIZATION_DEFAULT,
    ActuationPath,
    Gpu,
    Instance,
    InstanceState,
    IscSpec,
    LauncherConfigSpec,
    Node,
    Provider,
    ProviderKind,
    Requester,
    Routing,
    ServerSpec,
)
from fma.core.population import PopulationPolicy, SelectorRequirement
from fma.launcher.api import InstanceState as ReportedInstance
from fma.launcher.api import InstanceStatus

MIB_BYTES: Final = 1024**2
VLLM_PORT_DEFAULT: Final = 8000
"""vLLM's own default ``--port``: the port of a reported instance that names none."""
PLACEHOLDER_PORT: Final = 0
"""The port of a spec that could not be read (an invalid InferenceServerConfig, a direct
provider without a usable readinessProbe); never a port anything listens on."""
GpuMap = Mapping[str, Mapping[str, int]]
"""Node name -> {GPU UUID: index}, as :func:`parse_gpu_map` reads it."""


# --- shared readers ----------------------------------------------------------------------------


def parse_time(value: object) -> float | None:
    """An RFC 3339 timestamp (``2026-01-02T03:04:05Z``, fractional seconds allowed) in Unix
    seconds; None when absent or unreadable. A time without a zone is taken as UTC."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _metadata(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    metadata = obj.get("metadata")
    return metadata if isinstance(metadata, Mapping) else {}


def _string_map(value: object) -> dict[str, str]:
    if not isinstance(value, Mapping):
        return {}
    return {str(k): v for k, v in value.items() if isinstance(v, str)}


def annotations_of(obj: Mapping[str, Any]) -> dict[str, str]:
    return _string_map(_metadata(obj).get("annotations"))


def labels_of(obj: Mapping[str, Any]) -> dict[str, str]:
    return _string_map(_metadata(obj).get("labels"))


def _deleting(obj: Mapping[str, Any]) -> bool:
    return bool(_metadata(obj).get("deletionTimestamp"))


def _created_s(obj: Mapping[str, Any]) -> float:
    created = parse_time(_metadata(obj).get("creationTimestamp"))
    return created if created is not None else 0.0


def status_errors(obj: Mapping[str, Any]) -> tuple[str, ...]:
    """A custom resource's ``status.errors`` (what the operator last wrote there)."""
    status = obj.get("status")
    errors = status.get("errors") if isinstance(status, Mapping) else None
    if not isinstance(errors, list):
        return ()
    return tuple(e for e in errors if isinstance(e, str))


def _condition(obj: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    status = obj.get("status")
    conditions = status.get("conditions") if isinstance(status, Mapping) else None
    for condition in conditions if isinstance(conditions, list) else ():
        if isinstance(condition, Mapping) and condition.get("type") == kind:
            return condition
    return None


def _is_true(condition: Mapping[str, Any] | None) -> bool:
    return condition is not None and condition.get("status") == "True"


def _pod_ip(pod: Mapping[str, Any]) -> str | None:
    status = pod.get("status")
    ip = status.get("podIP") if isinstance(status, Mapping) else None
    return ip if isinstance(ip, str) and ip else None


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _whole(text: str) -> int | None:
    """A whole number written in ASCII digits, or None."""
    return int(text) if text.isascii() and text.isdigit() else None


def _port(text: str) -> int | None:
    """A port number written as a string (``"8081"``), or None."""
    port = _whole(text)
    return port if port is not None and 1 <= port <= 65535 else None


def _uuids(text: str) -> tuple[str, ...]:
    """Comma-joined GPU UUIDs, as the ``accelerators`` annotation has them."""
    return tuple(part.strip() for part in text.split(",") if part.strip())


# --- containers ----------------------------------------------------------------------------------


def _container_statuses(pod: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    status = pod.get("status")
    listed = status.get("containerStatuses") if isinstance(status, Mapping) else None
    if not isinstance(listed, list):
        return []
    return [s for s in listed if isinstance(s, Mapping)]


def server_container(pod: Mapping[str, Any]) -> str:
    """The name of the container that is the server: ``inference-server``, else the Pod's
    first container."""
    spec = pod.get("spec")
    listed = spec.get("containers") if isinstance(spec, Mapping) else None
    names = [c.get("name") for c in listed or () if isinstance(c, Mapping)]
    if names and CONTAINER_INFERENCE_SERVER not in names and isinstance(names[0], str):
        return names[0]
    return CONTAINER_INFERENCE_SERVER


def _container_status(pod: Mapping[str, Any], name: str) -> Mapping[str, Any] | None:
    return next((s for s in _container_statuses(pod) if s.get("name") == name), None)


def _running(status: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    state = status.get("state") if status is not None else None
    running = state.get("running") if isinstance(state, Mapping) else None
    return running if isinstance(running, Mapping) else None


def _running_since(status: Mapping[str, Any] | None) -> float | None:
    """When the container's current run started; None when it is not running."""
    running = _running(status)
    return parse_time(running.get("startedAt")) if running is not None else None


def _ready(status: Mapping[str, Any] | None) -> bool:
    return status is not None and status.get("ready") is True


def restart_count(pod: Mapping[str, Any]) -> int:
    """The restarts of all the Pod's containers together. A launcher's
    :class:`~fma.adapters.k8s.observed.LauncherReport` records this count when its stream is
    opened; a report taken at another count is from an earlier run of the launcher, which
    lost its instances."""
    return sum(_int(s.get("restartCount")) for s in _container_statuses(pod))


# --- weights -----------------------------------------------------------------------------------


def upper_bound_weights(share: float, gpu_memory_bytes: Iterable[int]) -> int:
    """The most an engine may claim when its weights' size is not given: its
    ``gpu_memory_utilization`` of each of its GPUs, so that a budget errs on the safe side."""
    return int(share * sum(gpu_memory_bytes))


def gpu_memories(uuids: Sequence[str], node: Node | None, default_bytes: int) -> list[int]:
    """Each GPU's memory on ``node`` (``default_bytes`` for one it does not list); one GPU of
    the default size when ``uuids`` is empty."""
    if not uuids:
        return [default_bytes]
    memories = []
    for uuid in uuids:
        gpu = node.gpu(uuid) if node is not None else None
        memories.append(gpu.memory_bytes if gpu is not None else default_bytes)
    return memories


# --- Pod classification ------------------------------------------------------------------------


class PodRole(StrEnum):
    """What a Pod is to FMA (upstream's classification)."""

    REQUESTER = "requester"
    """A non-empty ``server-patch`` or ``inference-server-config`` annotation."""
    LAUNCHER = "launcher"
    """The ``launcher-config-name`` label: a launcher, bound or not."""
    DIRECT = "direct"
    """A direct provider: the ``nominal`` annotation, or a binding record on a Pod that is
    not a launcher."""
    IGNORED = "ignored"
    """Anything else."""


def binding_of(pod: Mapping[str, Any]) -> tuple[str, str] | None:
    """The ``(uid, name)`` a provider's ``requester`` annotation binds it to, when it splits
    into exactly two space-separated parts (upstream's rule); None otherwise."""
    parts = annotations_of(pod).get(ANN_REQUESTER, "").split(" ")
    if len(parts) != 2 or not all(parts):
        return None
    return parts[0], parts[1]


def pod_role(pod: Mapping[str, Any]) -> PodRole:
    """Classify a Pod. The requester markers are looked at first, as upstream does: a Pod a
    user marked as a requester is never taken for a provider."""
    annotations = annotations_of(pod)
    if annotations.get(ANN_SERVER_PATCH) or annotations.get(ANN_INFERENCE_SERVER_CONFIG):
        return PodRole.REQUESTER
    if LABEL_LAUNCHER_CONFIG_NAME in labels_of(pod):
        return PodRole.LAUNCHER
    if ANN_NOMINAL in annotations or binding_of(pod) is not None:
        return PodRole.DIRECT
    return PodRole.IGNORED


# --- Nodes and the gpu-map ---------------------------------------------------------------------


def parse_gpu_map(
    configmap: Mapping[str, Any] | None,
) -> tuple[dict[str, dict[str, int]], tuple[str, ...]]:
    """The ``gpu-map`` ConfigMap: node name -> {GPU UUID: index}, and one problem per entry
    that cannot be read (naming its key; the entry is left out)."""
    data = configmap.get("data") if configmap is not None else None
    if not isinstance(data, Mapping):
        return {}, ()
    texts = {str(k): v for k, v in data.items() if isinstance(v, str)}
    parsed, problems = gpumap.parse_gpu_map(texts)
    problems += [
        f"gpu-map entry {k} is not a string" for k in sorted(map(str, data)) if k not in texts
    ]
    return parsed, tuple(problems)


def gpu_memory_of(node: Mapping[str, Any], default_bytes: int) -> int:
    """One GPU's memory on a Node: its ``nvidia.com/gpu.memory`` label (MiB), else
    ``default_bytes``."""
    mib = _whole(labels_of(node).get(LABEL_GPU_MEMORY, ""))
    return mib * MIB_BYTES if mib else default_bytes


def node_view(
    node: Mapping[str, Any], gpu_entry: Mapping[str, int], *, gpu_memory_bytes_default: int
) -> Node:
    """A Node with the GPUs its ``gpu-map`` entry lists (sorted by index), each of
    :func:`gpu_memory_of`; host memory from ``status.allocatable.memory`` (0 when unreadable);
    schedulable unless cordoned (``spec.unschedulable``); ready when its Ready condition is
    True; its labels."""
    memory = gpu_memory_of(node, gpu_memory_bytes_default)
    gpus = tuple(
        Gpu(uuid, index, memory)
        for uuid, index in sorted(gpu_entry.items(), key=lambda e: (e[1], e[0]))
    )
    spec = node.get("spec")
    cordoned = isinstance(spec, Mapping) and bool(spec.get("unschedulable"))
    return Node(
        name=name_of(node),
        gpus=gpus,
        host_memory_bytes=int(node_allocatable(node).get("memory", 0.0)),
        schedulable=not cordoned,
        ready=_is_true(_condition(node, "Ready")),
        labels=labels_of(node),
    )


def node_allocatable(node: Mapping[str, Any]) -> dict[str, float]:
    """``status.allocatable`` in base units (bytes, cores, devices), which population
    policies match; an amount that is not a quantity is left out."""
    status = node.get("status")
    allocatable = status.get("allocatable") if isinstance(status, Mapping) else None
    if not isinstance(allocatable, Mapping):
        return {}
    amounts: dict[str, float] = {}
    for resource, value in allocatable.items():
        if isinstance(value, int | float | str) and not isinstance(value, bool):
            try:
                amounts[str(resource)] = float(parse_quantity(value))
            except ValueError:
                continue
    return amounts


# --- Requesters --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RequesterFacts:
    """What a requester Pod says by itself (parsed once per resourceVersion).

    ``problems`` are what the user must fix in the Pod's own annotations (``weights_problem``
    among them); ``run`` is the server container's run
    (:func:`~fma.adapters.k8s.observed.container_run`), which a relayed readiness must match.
    ``pod`` is the object itself, for the direct path's rendering.
    """

    uid: str
    name: str
    node: str | None
    isc_name: str | None
    server_patch: bool
    accelerators: tuple[str, ...] | None
    weights_bytes: int | None
    weights_problem: str | None
    started_s: float | None
    run: str
    container_ready: bool
    deleting: bool
    actuated: bool
    finalizer: bool
    errors: tuple[str, ...]
    labels: Mapping[str, str]
    ip: str | None
    spi_port: int
    resource_version: str
    problems: tuple[str, ...]
    pod: Obj = field(repr=False, compare=False)


def requester_facts(pod: Obj) -> RequesterFacts:
    """Read a requester Pod (see :class:`RequesterFacts`).

    - ``node``: ``spec.nodeName`` (None until it is scheduled);
    - ``accelerators``: the comma-joined UUIDs of the ``accelerators`` annotation (the GPUs
      FMA recorded), None without it;
    - ``weights_bytes``: the ``weights-size`` annotation (a quantity), None without it;
    - ``errors``: the ``status`` annotation (:func:`requester_errors`);
    - ``spi_port``: the ``admin-port`` annotation, default 8081;
    - ``started_s``, ``run`` and ``container_ready``: of the ``inference-server`` container,
      else of the first one (``started_s`` None when it is not running).

    Problems: an ``admin-port`` that is not a port (8081 is used), a ``weights-size`` that is
    not a size, both a server patch and an InferenceServerConfig (the latter is used).
    """
    metadata = _metadata(pod)
    annotations = annotations_of(pod)
    problems: list[str] = []
    isc_name = annotations.get(ANN_INFERENCE_SERVER_CONFIG) or None
    server_patch = bool(annotations.get(ANN_SERVER_PATCH))
    if isc_name is not None and server_patch:
        problems.append(
            f"annotations {ANN_SERVER_PATCH} and {ANN_INFERENCE_SERVER_CONFIG} exclude each "
            "other; the InferenceServerConfig is used"
        )
    weights_bytes: int | None = None
    weights_problem: str | None = None
    weights_text = annotations.get(ANN_WEIGHTS_SIZE)
    if weights_text is not None:
        try:
            weights_bytes = quantity_bytes(weights_text)
        except ValueError as error:
            weights_problem = f"annotation {ANN_WEIGHTS_SIZE}: {error}"
            problems.append(weights_problem)
    spi_port = REQUESTER_SPI_PORT
    port_text = annotations.get(ANN_ADMIN_PORT)
    if port_text is not None:
        port = _port(port_text)
        if port is None:
            problems.append(f"annotation {ANN_ADMIN_PORT}: {port_text!r} is not a port number")
        else:
            spi_port = port
    spec = pod.get("spec")
    node = spec.get("nodeName") if isinstance(spec, Mapping) else None
    accelerators = annotations.get(ANN_ACCELERATORS)
    container = server_container(pod)
    status = _container_status(pod, container)
    finalizers = metadata.get("finalizers")
    return RequesterFacts(
        uid=uid_of(pod),
        name=name_of(pod),
        node=node if isinstance(node, str) and node else None,
        isc_name=isc_name,
        server_patch=server_patch,
        accelerators=_uuids(accelerators) if accelerators is not None else None,
        weights_bytes=weights_bytes,
        weights_problem=weights_problem,
        started_s=_running_since(status),
        run=container_run(pod, container),
        container_ready=_ready(status),
        deleting=_deleting(pod),
        actuated=ANN_ACTUATED in annotations,
        finalizer=isinstance(finalizers, list) and FINALIZER_REQUESTER in finalizers,
        errors=requester_errors(annotations.get(ANN_STATUS)),
        labels=labels_of(pod),
        ip=_pod_ip(pod),
        spi_port=spi_port,
        resource_version=resource_version(pod),
        problems=tuple(problems),
        pod=pod,
    )


def requester_errors(text: str | None) -> tuple[str, ...]:
    """The errors of a requester's ``status`` annotation, JSON ``{"Errors": [...]}`` as
    upstream writes it; () when it is absent or cannot be read."""
    if not text:
        return ()
    try:
        status = json.loads(text)
    except json.JSONDecodeError:
        return ()
    errors = status.get("Errors") if isinstance(status, dict) else None
    if not isinstance(errors, list):
        return ()
    return tuple(e for e in errors if isinstance(e, str))


DirectRender = Callable[[RequesterFacts, str, tuple[int, ...], tuple[int, ...]], ServerSpec | str]
"""Renders a requester's direct spec (:func:`render_direct`). A caller may memoise it: the
rendering is the costly part, and it depends on nothing but the object's version and the
arguments."""


def render_direct(
    facts: RequesterFacts, node: str, gpu_indices: tuple[int, ...], gpu_memory: tuple[int, ...]
) -> ServerSpec | str:
    """:func:`~fma.adapters.k8s.render.direct.direct_server_spec` of the requester on ``node``
    with the GPUs of ``gpu_indices``, or the one line of its :class:`RenderError`.
    ``weights_bytes`` is the requester's ``weights-size``, else the upper bound
    ``gpu_memory_utilization`` x ``gpu_memory`` (the memory of each of its GPUs)."""
    try:
        spec = direct_server_spec(facts.pod, node=node, gpu_indices=gpu_indices, weights_bytes=0)
    except RenderError as error:
        return str(error)
    weights = facts.weights_bytes
    if weights is None:
        weights = upper_bound_weights(spec.gpu_memory_utilization, gpu_memory)
    return dataclasses.replace(spec, weights_bytes=weights)


def direct_spec(
    facts: RequesterFacts,
    *,
    node: Node,
    gpu_uuids: tuple[str, ...],
    gpu_map: GpuMap | None,
    gpu_memory_bytes_default: int,
    render: DirectRender = render_direct,
) -> tuple[ServerSpec | None, tuple[str, ...]]:
    """The direct path's spec of a requester on ``node`` with ``gpu_uuids``, or the problems
    that prevent it: GPUs the ``gpu-map`` cannot translate to indices (``gpu_map`` None: there
    is no ConfigMap), a server patch that does not render.

    ``weights_bytes`` is the requester's ``weights-size``, else the upper bound
    ``gpu_memory_utilization`` x the memory of its GPUs. A ``weights-size`` that cannot be
    read gives no spec (its problem is in :attr:`RequesterFacts.problems`): the requester is
    not served with a size the user must fix.
    """
    indices, problems = gpumap.gpu_indices(gpu_uuids, node.name, gpu_map)
    if problems:
        return None, problems
    memories = tuple(gpu_memories(gpu_uuids, node, gpu_memory_bytes_default))
    rendered = render(facts, node.name, indices, memories)
    if isinstance(rendered, str):
        return None, (rendered,)
    if facts.weights_problem is not None:
        return None, ()
    return rendered, ()


@dataclass(frozen=True, slots=True)
class RequesterView:
    """A requester, and the problems with its own input that its status must show.

    The core's :class:`~fma.core.model.Requester` has no field for them. While one stands that
    concerns the direct path's spec (a server patch that does not render, a ``weights-size``
    that is not a size, GPUs without indices), ``spec`` is None, which the core reports as
    ``no server patch or InferenceServerConfig``; the others (an ``admin-port`` that is not a
    port, both paths asked for) do not stop it from being served.
    """

    requester: Requester
    problems: tuple[str, ...] = ()


def requester_view(
    facts: RequesterFacts,
    *,
    node: Node | None,
    gpu_map: GpuMap | None,
    reported_gpus: tuple[str, ...] | None,
    relays: Relays,
    gpu_memory_bytes_default: int,
    render: DirectRender = render_direct,
) -> RequesterView:
    """The requester as the core sees it now.

    - ``gpu_uuids``: the ``accelerators`` annotation, else ``reported_gpus`` (what its SPI
      answered, kept by the operator), else None (not known yet);
    - ``ready``: the readiness last relayed to its current container run, else the
      container's ready flag;
    - ``spec`` (direct path only): :func:`direct_spec`, once it is scheduled on ``node`` and
      its GPUs are known; None before.
    """
    gpu_uuids = facts.accelerators if facts.accelerators is not None else reported_gpus
    spec: ServerSpec | None = None
    problems = facts.problems
    if (
        facts.isc_name is None
        and facts.server_patch
        and node is not None
        and facts.node == node.name
        and gpu_uuids is not None
    ):
        spec, spec_problems = direct_spec(
            facts,
            node=node,
            gpu_uuids=gpu_uuids,
            gpu_map=gpu_map,
            gpu_memory_bytes_default=gpu_memory_bytes_default,
            render=render,
        )
        problems = (*problems, *spec_problems)
    relayed = relays.relayed(facts.uid, facts.run)
    requester = Requester(
        uid=facts.uid,
        name=facts.name,
        node=facts.node,
        gpu_uuids=gpu_uuids,
        spec=spec,
        isc_name=facts.isc_name,
        started_s=facts.started_s,
        deleting=facts.deleting,
        ready=relayed if relayed is not None else facts.container_ready,
        actuated=facts.actuated,
        finalizer=facts.finalizer,
        errors=facts.errors,
        labels=facts.labels,
        ip=facts.ip,
        spi_port=facts.spi_port,
        resource_version=facts.resource_version,
        problems=problems,
    )
    return RequesterView(requester, problems)


# --- Providers ---------------------------------------------------------------------------------


class ContainerPhase(StrEnum):
    """Where a direct provider's engine container is."""

    NOT_STARTED = "not_started"
    """No run yet (being created, pulling its image): it is about to load onto its GPUs."""
    RUNNING = "running"
    EXITED = "exited"
    """Terminated, or waiting after a run (a crash loop): the engine lost its weights."""


@dataclass(frozen=True, slots=True)
class DirectFacts:
    """What a direct provider's Pod says of its one engine; ``spec.weights_bytes`` is 0
    (the memory of its GPUs is the node's: :func:`direct_instance` fills it)."""

    instance_id: str
    spec: ServerSpec
    gpu_uuids: tuple[str, ...]
    phase: ContainerPhase
    container_ready: bool
    run: str
    started_s: float | None
    weights_bytes: int | None = None
    """The ``weights-size`` its requester gave (copied onto the Pod), None without one."""


@dataclass(frozen=True, slots=True)
class ProviderFacts:
    """What a provider Pod says by itself (parsed once per resourceVersion): the
    :class:`~fma.core.model.Provider` without its instances, and what they are made from
    (the last-use and refused-sleep annotations, a direct provider's engine container)."""

    provider: Provider
    requester_name: str | None
    last_used: Mapping[str, float]
    sleep_refused: frozenset[str]
    direct: DirectFacts | None


def provider_facts(pod: Obj) -> ProviderFacts:
    """Read a provider Pod (a launcher or a direct provider, :func:`pod_role`).

    - ``node``: ``nodeSelector[kubernetes.io/hostname]``, else ``spec.nodeName``;
    - ``kind``: a launcher when it has the ``launcher-config-name`` label, else direct;
    - the binding: ``requester`` (``"<uid> <name>"``), ``instance-id``, ``actuation-path``
      (None when it is not a path), ``bound-at`` (RFC 3339);
    - ``ready`` and ``ready_changed_s``: its Ready condition and its last transition;
    - ``restarts``: all its containers' restarts together;
    - ``routing``: the routing metadata FMA recorded as applied;
    - ``port``: 8001 for a launcher; a direct provider's engine port (None when its
      readinessProbe does not say).
    """
    metadata = _metadata(pod)
    annotations = annotations_of(pod)
    labels = labels_of(pod)
    spec = pod.get("spec")
    spec = spec if isinstance(spec, Mapping) else {}
    selector = spec.get("nodeSelector")
    pinned = selector.get(LABEL_HOSTNAME) if isinstance(selector, Mapping) else None
    node_name = pinned or spec.get("nodeName")
    binding = binding_of(pod)
    launcher = LABEL_LAUNCHER_CONFIG_NAME in labels
    ready = _condition(pod, "Ready")
    try:
        path: ActuationPath | None = ActuationPath(annotations.get(ANN_ACTUATION_PATH, ""))
    except ValueError:
        path = None
    direct = None if launcher else _direct_facts(pod, annotations)
    if direct is None:
        port: int | None = LAUNCHER_PORT
    else:
        port = direct.spec.port if direct.spec.port != PLACEHOLDER_PORT else None
    provider = Provider(
        name=name_of(pod),
        node=str(node_name or ""),
        kind=ProviderKind.LAUNCHER if launcher else ProviderKind.DIRECT,
        created_s=_created_s(pod),
        bound_requester_uid=binding[0] if binding is not None else None,
        bound_instance_id=annotations.get(ANN_INSTANCE_ID) or None,
        path=path,
        bound_s=parse_time(annotations.get(ANN_BOUND_AT)),
        ready=_is_true(ready),
        deleting=_deleting(pod),
        launcher_config=labels.get(LABEL_LAUNCHER_CONFIG_NAME),
        template_hash=annotations.get(ANN_LAUNCHER_TEMPLATE_HASH),
        ready_changed_s=parse_time(ready.get("lastTransitionTime")) if ready else None,
        restarts=restart_count(pod),
        labels=labels,
        routing=applied_routing(annotations),
        uid=uid_of(pod),
        resource_version=str(metadata.get("resourceVersion") or ""),
        ip=_pod_ip(pod),
        port=port,
    )
    return ProviderFacts(
        provider=provider,
        requester_name=binding[1] if binding is not None else None,
        last_used=last_used_of(annotations.get(ANN_INSTANCES_LAST_USED)),
        sleep_refused=sleep_refused_of(annotations.get(ANN_SLEEP_REFUSED)),
        direct=direct,
    )


def last_used_of(text: str | None) -> dict[str, float]:
    """The ``instances-last-used`` annotation (JSON ``{instance ID: RFC 3339}``) in Unix
    seconds; entries that cannot be read are left out."""
    if not text:
        return {}
    try:
        record = json.loads(text)
    except json.JSONDecodeError:
        return {}
    if not isinstance(record, dict):
        return {}
    times = {k: parse_time(v) for k, v in record.items() if isinstance(k, str)}
    return {k: t for k, t in times.items() if t is not None}


def sleep_refused_of(text: str | None) -> frozenset[str]:
    """The ``sleep-refused`` annotation (JSON list of instance IDs); empty when unreadable."""
    if not text:
        return frozenset()
    try:
        record = json.loads(text)
    except json.JSONDecodeError:
        return frozenset()
    if not isinstance(record, list):
        return frozenset()
    return frozenset(i for i in record if isinstance(i, str))


def _direct_facts(pod: Obj, annotations: Mapping[str, str]) -> DirectFacts:
    """A direct provider's one engine, read from the Pod alone.

    Its spec is the one :func:`~fma.adapters.k8s.render.direct.direct_server_spec` gave its
    requester: ``model`` from the ``inference-server`` container's command and args (the
    server patch's, which the provider Pod carries unchanged), ``port`` the engine port, the
    one option ``--nominal=<the nominal annotation>``. Its ID is the ``instance-id``
    annotation, else that spec's on its GPUs (the ``accelerators`` annotation): the ID a
    requester with the same nominal hash looks for.
    """
    server = find_container(pod.get("spec") or {}, CONTAINER_INFERENCE_SERVER) or {}
    argv = [str(a) for a in [*(server.get("command") or []), *(server.get("args") or [])]]
    try:
        model = flag_value(argv, MODEL_FLAGS) or served_model(argv)
    except ValueError:
        model = None
    try:
        share = gpu_memory_utilization(argv)
    except ValueError:
        share = GPU_MEMORY_UTILIZATION_DEFAULT
    try:
        port = direct_engine_port(pod)
    except RenderError:
        port = PLACEHOLDER_PORT
    nominal = annotations.get(ANN_NOMINAL)
    gpu_uuids = _uuids(annotations.get(ANN_ACCELERATORS, ""))
    spec = ServerSpec(
        model=model or str(server.get("image") or UNKNOWN_MODEL),
        port=port,
        options=("--nominal=" + nominal,) if nominal else (),
        gpu_memory_utilization=share,
    )
    container = server_container(pod)
    status = _container_status(pod, container)
    try:
        weights = quantity_bytes(annotations[ANN_WEIGHTS_SIZE])
    except (KeyError, ValueError):
        weights = None  # the requester's size was checked; an edited one counts as none
    return DirectFacts(
        instance_id=annotations.get(ANN_INSTANCE_ID) or instance_id(spec, gpu_uuids),
        spec=spec,
        gpu_uuids=gpu_uuids,
        phase=_container_phase(status),
        container_ready=_ready(status),
        run=container_run(pod, container),
        started_s=_running_since(status),
        weights_bytes=weights,
    )


def _container_phase(status: Mapping[str, Any] | None) -> ContainerPhase:
    if status is None:
        return ContainerPhase.NOT_STARTED
    if _running(status) is not None:
        return ContainerPhase.RUNNING
    state = status.get("state")
    waiting = isinstance(state, Mapping) and isinstance(state.get("waiting"), Mapping)
    last = status.get("lastState")
    ran_before = isinstance(last, Mapping) and bool(last.get("terminated"))
    if waiting and _int(status.get("restartCount")) == 0 and not ran_before:
        return ContainerPhase.NOT_STARTED
    return ContainerPhase.EXITED


def report_is_current(facts: ProviderFacts, report: LauncherReport | None) -> bool:
    """Whether a launcher's report is from this very Pod (its UID) and from the current run
    of its launcher (:func:`restart_count`)."""
    provider = facts.provider
    return (
        report is not None
        and report.pod_uid == provider.uid
        and report.restarts == provider.restarts
    )


def provider_view(
    facts: ProviderFacts,
    *,
    node: Node | None,
    report: LauncherReport | None,
    engines: EngineBook,
    iscs: Mapping[str, IscSpec],
    gpu_memory_bytes_default: int,
) -> Provider:
    """The provider with its instances as known now.

    A launcher's come from its latest ``report`` when that is from this very Pod (its UID)
    and from the current run of its launcher (:func:`restart_count`); otherwise none are
    known. A direct provider's one instance comes from its container
    (:func:`direct_instance`).
    """
    provider = facts.provider
    if facts.direct is not None:
        instances: tuple[Instance, ...] = (
            direct_instance(
                facts, engines, node=node, gpu_memory_bytes_default=gpu_memory_bytes_default
            ),
        )
    elif report_is_current(facts, report):
        assert report is not None
        instances = tuple(
            launcher_instance(
                facts,
                reported,
                engines=engines,
                node=node,
                iscs=iscs,
                gpu_memory_bytes_default=gpu_memory_bytes_default,
            )
            for _, reported in sorted(report.instances.items())
        )
    else:
        instances = ()
    return dataclasses.replace(provider, instances=instances)


def _last_used_s(facts: ProviderFacts, engines: EngineBook, iid: str, created_s: float) -> float:
    """The later of the operator's own record and the Pod's annotation, else creation."""
    known = [
        t
        for t in (engines.last_used(facts.provider.name).get(iid), facts.last_used.get(iid))
        if t is not None
    ]
    return max(known) if known else created_s


def _sleepable(facts: ProviderFacts, engines: EngineBook, iid: str) -> bool:
    return iid not in facts.sleep_refused and iid not in engines.refused(facts.provider.name)


def launcher_instance(
    facts: ProviderFacts,
    reported: ReportedInstance,
    *,
    engines: EngineBook,
    node: Node | None,
    iscs: Mapping[str, IscSpec],
    gpu_memory_bytes_default: int,
) -> Instance:
    """One instance a launcher reports.

    - ``state``: STOPPED when the launcher says so; otherwise the operator's note of its
      phase, else STARTING (the conservative guess: it holds its GPUs and is not woken; the
      engine prober resolves it and re-queues the node);
    - ``spec``: the spec of the InferenceServerConfig it names (``isc-name``) when that spec
      still gives its ID, else :func:`reported_spec` (an obsolete instance);
    - ``created_s``: since when a STARTING note says it loads, else the Pod's creation;
    - ``last_used_s``: the later of the operator's record and the ``instances-last-used``
      annotation, else ``created_s``;
    - ``sleepable``: False once its engine refused to sleep (the operator's record or the
      ``sleep-refused`` annotation).
    """
    iid = reported.instance_id
    gpu_uuids = tuple(reported.gpu_uuids or ())
    isc_name = (reported.annotations or {}).get(VLLM_CONFIG_ISC_NAME) or None
    note = engines.note(facts.provider.name, iid)
    if reported.status is InstanceStatus.STOPPED:
        state = InstanceState.STOPPED
    elif note is not None:
        state = note.phase
    else:
        state = InstanceState.STARTING
    isc = iscs.get(isc_name) if isc_name is not None else None
    if isc is not None and instance_id(isc.spec, gpu_uuids) == iid:
        spec = isc.spec
    else:
        memories = gpu_memories(gpu_uuids, node, gpu_memory_bytes_default)
        spec = reported_spec(reported, gpu_memory_bytes=memories)
    if note is not None and note.phase is InstanceState.STARTING:
        created_s = note.since_s
    else:
        created_s = facts.provider.created_s
    return Instance(
        instance_id=iid,
        spec=spec,
        gpu_uuids=gpu_uuids,
        state=state,
        created_s=created_s,
        last_used_s=_last_used_s(facts, engines, iid, created_s),
        isc_name=isc_name,
        sleepable=_sleepable(facts, engines, iid),
    )


def reported_spec(reported: ReportedInstance, *, gpu_memory_bytes: Sequence[int]) -> ServerSpec:
    """The spec a launcher's instance runs, rebuilt from what the launcher reports (for an
    instance whose InferenceServerConfig is gone or changed).

    ``port``: the ``inference-port`` annotation, else ``--port`` in the options, else vLLM's
    default 8000; ``options``: the reported ones without ``--port`` (FMA appends it; an ISC's
    options never have it); ``model``: ``--model``, else the first option when it is not a
    flag, else ``unknown``; ``env``: the reported environment without the
    ``CUDA_VISIBLE_DEVICES`` the launcher adds; ``gpu_memory_utilization`` from the options
    (default 0.9); ``weights_bytes``: the upper bound over ``gpu_memory_bytes`` (the memory of
    each of its GPUs).
    """
    options = list(reported.options)
    port = _port((reported.annotations or {}).get(VLLM_CONFIG_INFERENCE_PORT, ""))
    if port is None:
        try:
            port = _port(flag_value(options, PORT_FLAGS) or "")
        except ValueError:
            port = None
    kept = _without_flag(options, PORT_FLAGS)
    try:
        model = flag_value(kept, MODEL_FLAGS)
    except ValueError:
        model = None
    if model is None:
        model = kept[0] if kept and not kept[0].startswith("-") else UNKNOWN_MODEL
    try:
        share = gpu_memory_utilization(kept)
    except ValueError:
        share = GPU_MEMORY_UTILIZATION_DEFAULT
    env = {k: v for k, v in (reported.env_vars or {}).items() if k != ENV_CUDA_VISIBLE_DEVICES}
    return ServerSpec(
        model=model,
        port=port if port is not None else VLLM_PORT_DEFAULT,
        options=tuple(kept),
        env=tuple(sorted(env.items())),
        weights_bytes=upper_bound_weights(share, gpu_memory_bytes),
        gpu_memory_utilization=share,
    )


def _without_flag(args: Sequence[str], flags: Sequence[str]) -> list[str]:
    """``args`` without any of ``flags`` and their values (``--f v`` or ``--f=v``)."""
    kept: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg in flags:
            skip = True
        elif not arg.startswith(tuple(f + "=" for f in flags)):
            kept.append(arg)
    return kept


def direct_instance(
    facts: ProviderFacts,
    engines: EngineBook,
    *,
    node: Node | None,
    gpu_memory_bytes_default: int,
) -> Instance:
    """A direct provider's one instance, from its engine container.

    ``state``: STOPPED once the container has exited (terminated, or waiting after a run);
    STARTING before its first run (it is about to load onto its GPUs); while it runs, the
    operator's note of this very run (a note of an earlier run no longer applies: a restarted
    container lost its weights), else AWAKE when the container is ready, else STARTING.
    ``created_s`` is when the current run started, else the Pod's creation. ``weights_bytes``
    is the ``weights-size`` the Pod carries from its requester, else the upper bound over its
    GPUs on ``node``.
    """
    direct = facts.direct
    assert direct is not None
    iid = direct.instance_id
    if direct.phase is ContainerPhase.EXITED:
        state = InstanceState.STOPPED
    elif direct.phase is ContainerPhase.NOT_STARTED:
        state = InstanceState.STARTING
    else:
        note = engines.note(facts.provider.name, iid)
        if note is not None and note.run == direct.run:
            state = note.phase
        elif direct.container_ready:
            state = InstanceState.AWAKE
        else:
            state = InstanceState.STARTING
    weights = direct.weights_bytes
    if weights is None:
        memories = gpu_memories(direct.gpu_uuids, node, gpu_memory_bytes_default)
        weights = upper_bound_weights(direct.spec.gpu_memory_utilization, memories)
    spec = dataclasses.replace(direct.spec, weights_bytes=weights)
    created_s = direct.started_s if direct.started_s is not None else facts.provider.created_s
    return Instance(
        instance_id=iid,
        spec=spec,
        gpu_uuids=direct.gpu_uuids,
        state=state,
        created_s=created_s,
        last_used_s=_last_used_s(facts, engines, iid, created_s),
        isc_name=None,
        sleepable=_sleepable(facts, engines, iid),
    )


# --- Configuration objects ---------------------------------------------------------------------


def _validated(obj: Mapping[str, Any]) -> dict[str, Any]:
    """The parts of a custom resource that are validated: the status is the operator's own
    (and may carry fields another version wrote), so it is read apart."""
    return {k: v for k, v in obj.items() if k != "status"}


@dataclass(frozen=True, slots=True)
class ParsedIsc:
    """An InferenceServerConfig read and checked; its spec still needs one GPU's memory
    (:func:`isc_view`). ``model`` is None when the object is not a valid ISC."""

    name: str
    model: InferenceServerConfig | None
    launcher_config: str
    routing: Routing
    problems: tuple[str, ...]
    errors: tuple[str, ...]


def parse_isc(obj: Mapping[str, Any]) -> ParsedIsc:
    """Validate an InferenceServerConfig with its pydantic model. ``problems``: the
    validation error, else its routing metadata's problems; ``errors``: its
    ``status.errors``."""
    errors = status_errors(obj)
    try:
        model = InferenceServerConfig.model_validate(_validated(obj))
    except ValidationError as error:
        spec = obj.get("spec")
        lc = spec.get("launcherConfigName") if isinstance(spec, Mapping) else None
        return ParsedIsc(
            name_of(obj),
            None,
            lc if isinstance(lc, str) else "",
            Routing(),
            (describe(error),),
            errors,
        )
    return ParsedIsc(
        model.metadata.name,
        model,
        model.spec.launcher_config_name,
        routing_of(model),
        routing_problems(model),
        errors,
    )


def isc_view(parsed: ParsedIsc, *, gpu_memory_bytes: int) -> IscSpec:
    """The ISC as the core sees it where one GPU has ``gpu_memory_bytes``, which bounds its
    weights when ``weightsSize`` is not given (:func:`.render.specs.isc_server_spec`).

    An ISC that cannot be made into a spec (invalid, or options that do not render) keeps its
    problems and gets a placeholder spec (model ``unknown``, port 0)."""
    problems = parsed.problems
    spec = ServerSpec(model=UNKNOWN_MODEL, port=PLACEHOLDER_PORT)
    if parsed.model is not None:
        try:
            spec = isc_server_spec(parsed.model, gpu_memory_bytes=gpu_memory_bytes)
        except RenderError as error:
            problems = (*problems, str(error))
    return IscSpec(
        parsed.name, spec, parsed.launcher_config, parsed.routing, problems, parsed.errors
    )


def launcher_config_view(obj: Mapping[str, Any]) -> LauncherConfigSpec:
    """A LauncherConfig: its cap, its template hash and its problems (the validation error,
    else its template's problems); ``errors``: its ``status.errors``. An invalid one has an
    empty template hash and its ``maxInstances`` when that is a positive whole number (else
    1): the core keeps hands off it anyway."""
    errors = status_errors(obj)
    try:
        model = LauncherConfig.model_validate(_validated(obj))
    except ValidationError as error:
        spec = obj.get("spec")
        cap = _int(spec.get("maxInstances")) if isinstance(spec, Mapping) else 0
        return LauncherConfigSpec(name_of(obj), max(cap, 1), "", (describe(error),), errors)
    return LauncherConfigSpec(
        model.metadata.name,
        model.spec.max_instances,
        launcher_template_hash(model),
        launcher_template_problems(model),
        errors,
    )


ALLOCATABLE_PATH: Final = "spec.enhancedNodeSelector.allocatableResources"


def population_policy_view(
    obj: Mapping[str, Any],
) -> tuple[PopulationPolicy | None, tuple[str, ...]]:
    """A LauncherPopulationPolicy parsed (allocatable bounds in base units), or None and the
    problems that make it unusable: a validation error, a bound that is not a quantity."""
    try:
        model = LauncherPopulationPolicy.model_validate(_validated(obj))
    except ValidationError as error:
        return None, (describe(error),)
    selector = model.spec.enhanced_node_selector
    problems: list[str] = []
    allocatable: dict[str, tuple[float | None, float | None]] = {}
    for resource, bounds in sorted((selector.allocatable_resources or {}).items()):
        where = key_path(ALLOCATABLE_PATH, resource)
        low = _bound(bounds.min, f"{where}.min", problems)
        high = _bound(bounds.max, f"{where}.max", problems)
        allocatable[resource] = (low, high)
    if problems:
        return None, tuple(problems)
    labels = selector.label_selector
    policy = PopulationPolicy(
        name=model.metadata.name,
        match_labels=dict(labels.match_labels or {}),
        match_expressions=tuple(
            SelectorRequirement(r.key, r.operator, tuple(r.values or ()))
            for r in labels.match_expressions or ()
        ),
        allocatable=allocatable,
        counts={c.launcher_config_name: c.launcher_count for c in model.spec.count_for_launcher},
    )
    return policy, ()


def _bound(value: int | str | None, path: str, problems: list[str]) -> float | None:
    if value is None:
        return None
    try:
        return float(parse_quantity(value))
    except ValueError as error:
        problems.append(f"{path}: {error}")
        return None
