"""Scenario file, version 1: the input of ``fma sim run``, ``compare`` and ``plan``.

A scenario names a cluster, the models, the platform latencies, the launcher set-up, the policy,
the demand, faults and the SLO. Every section but ``cluster``, ``models`` and ``demand`` has
documented defaults (``docs/scenarios.md``). Durations are a number of seconds or a string with
an ``s``/``m``/``h``/``d`` suffix. Unknown fields are errors, named with their path.
"""

import fnmatch
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from fma.api.demand import Demand
from fma.api.durations import Duration
from fma.api.durations import parse_duration_s as parse_duration_s
from fma.api.latency import (
    COMPILE_CACHED_S_DEFAULT,
    COMPILE_S_DEFAULT,
    ENGINE_INIT_S_DEFAULT,
    LAUNCHER_MEMORY_GIB_DEFAULT,
    PIN_GBPS_DEFAULT,
    Latency,
)
from fma.api.topology import LINKS, TopologyName


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NodePool(_Section):
    """A set of identical GPU nodes. Bandwidths are in GB/s (10^9 bytes per second).

    ``topology`` names the board (:mod:`fma.api.topology`); ``h2d_gbps`` and ``d2h_gbps`` are
    what vLLM's wake and sleep achieve per GPU (by default, the measured rates of the board's
    link class), and may not beat the link's floor (its fastest measured copy)."""

    name: str = Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    count: int = Field(ge=0)
    gpus_per_node: int = Field(8, ge=1, le=64)
    gpu_memory_gib: float = Field(80.0, gt=0)
    host_memory_gib: float = Field(1024.0, gt=0)
    topology: TopologyName = "hgx"
    h2d_gbps: float | None = Field(
        None, gt=0, description="Host-to-device rate of a wake (default: the link class's)."
    )
    d2h_gbps: float | None = Field(
        None, gt=0, description="Device-to-host rate of a sleep (default: the link class's)."
    )
    pin_gbps: float = Field(
        PIN_GBPS_DEFAULT, gt=0, description="Page-locking host memory (a first sleep's)."
    )
    disk_gbps: float = Field(5.0, gt=0, description="Weights load on a cold start.")
    gpu_allocation: Literal["device-plugin", "lowest-index"] = "device-plugin"
    """How the kubelet picks a Pod's GPUs: as NVIDIA's device plugin (topology-aware sets, any
    free GPU for one), or the lowest free indexes (the test control plane's pod runner)."""

    @model_validator(mode="after")
    def _no_faster_than_the_link(self) -> "NodePool":
        link = LINKS[self.topology]
        for field_name, rate, floor in (
            ("h2d_gbps", self.h2d_gbps, link.h2d_floor_gbps),
            ("d2h_gbps", self.d2h_gbps, link.d2h_floor_gbps),
        ):
            if rate is not None and rate > floor:
                raise ValueError(
                    f"{field_name}: {rate:g} GB/s is faster than the {link.name} link allows "
                    f"(its fastest measured copy is {floor:g} GB/s)"
                )
        return self

    @property
    def wake_gbps(self) -> float:
        return self.h2d_gbps if self.h2d_gbps is not None else LINKS[self.topology].vllm_h2d_gbps

    @property
    def sleep_gbps(self) -> float:
        return self.d2h_gbps if self.d2h_gbps is not None else LINKS[self.topology].vllm_d2h_gbps


class Cluster(_Section):
    node_pools: list[NodePool] = Field(min_length=1)


class Model(_Section):
    """A model to serve. ``copies: N`` stands for N models of the same shape, named
    ``<name>-0`` ... ``<name>-<N-1>`` (zero-padded), e.g. fine-tunes of one base model."""

    name: str = Field(min_length=1)
    weights_gib: float = Field(gt=0)
    gpus: int = Field(1, ge=1, le=64)
    engine_init_s: float = Field(
        ENGINE_INIT_S_DEFAULT,
        ge=0,
        description="Engine init beyond the weights load and torch.compile: profiling, the KV "
        "cache, CUDA graphs.",
    )
    compile_s: float = Field(
        COMPILE_S_DEFAULT, ge=0, description="torch.compile on a node that never compiled it."
    )
    compile_cached_s: float = Field(
        COMPILE_CACHED_S_DEFAULT,
        ge=0,
        description="torch.compile from the node's compile cache (a later start).",
    )
    port: int = Field(8000, ge=1, le=65535)
    copies: int = Field(1, ge=1, le=10_000)
    gpu_memory_utilization: float = Field(
        0.9, gt=0, le=1, description="Share of each GPU an awake engine claims (weights, KV)."
    )
    sleep_mode: bool = Field(True, description="Whether its engines can sleep at all.")

    def expanded(self) -> list["Model"]:
        """This entry as single models (itself when ``copies`` is 1)."""
        if self.copies == 1:
            return [self]
        width = len(str(self.copies - 1))
        return [
            self.model_copy(update={"name": f"{self.name}-{k:0{width}d}", "copies": 1})
            for k in range(self.copies)
        ]


class Launchers(_Section):
    """The LauncherConfig (``max_instances``) and population policy (``per_node``) of a run."""

    max_instances: int = Field(4, ge=1)
    per_node: int = Field(0, ge=0)
    host_memory_gib: float = Field(
        LAUNCHER_MEMORY_GIB_DEFAULT,
        ge=0,
        description="Host memory one launcher's process holds (vLLM imported).",
    )


class PolicySection(_Section):
    actuation: Literal["fma", "direct-sleep", "cold"] = "fma"
    eviction: Literal["lru", "oldest", "cost"] = "lru"
    sleeping_gib_per_gpu_max: float | None = Field(None, ge=0)
    sleeper_residue_gib: float = Field(
        3.0,
        ge=0,
        le=8,
        description="GPU memory a sleeper keeps on each of its GPUs (1-8 GiB measured).",
    )
    launchers_per_node_max: int | None = Field(None, ge=1)
    ready_timeout: Duration = 600.0
    placement: Literal["default", "node-affinity", "gpu-aware", "oracle"] = "default"
    """Where requester Pods go (``docs/placement.md``): the scheduler's and device plugin's own
    choice; toward nodes holding a sleeper of their identity; also onto its GPUs; or the
    oracle's upper bound."""


FaultKind = Literal[
    "node_loss",
    "node_cordon",
    "node_not_ready",
    "launcher_crash",
    "instance_crash",
    "controller_restart",
    "wake_failure",
    "sleep_failure",
    "create_failure",
    "delete_failure",
    "relay_failure",
    "gpu_query_failure",
    "api_conflict",
    "api_error",
    "watch_delay",
    "watch_drop",
]
OCCURRENCE_FAULTS: frozenset[str] = frozenset(
    {
        "node_loss",
        "node_cordon",
        "node_not_ready",
        "launcher_crash",
        "instance_crash",
        "controller_restart",
    }
)
"""Faults that happen at a time (``at`` or ``rate_per_h``); the others hit single operations."""
FaultMode = Literal["error", "timeout", "refused", "conflict"]
FAULT_MODES: dict[str, tuple[str, ...]] = {
    "wake_failure": ("error", "timeout"),
    "sleep_failure": ("error", "timeout", "refused"),
    "create_failure": ("error", "conflict"),
}
"""The modes a per-operation fault may take (the others are plain errors)."""


class Fault(_Section):
    """One source of trouble in a run (``docs/simulator.md`` describes each kind).

    Occurrence faults (node loss, cordon, crashes, controller restart) happen once ``at`` a time
    or at ``rate_per_h`` within ``[start, until)``; ``duration`` is how long one lasts (a lost
    node comes back, a cordon is lifted, the controller is down). Per-operation faults (wake
    failures, API conflicts and errors, watch delays and drops) hit each operation within
    ``[start, until)`` with ``probability``. Every fault stops at ``until`` or at the end of the
    scenario's duration, whichever is first; the run then checks liveness.
    """

    kind: FaultKind
    at: Duration | None = None
    rate_per_h: float | None = Field(None, gt=0)
    start: Duration = 0.0
    until: Duration | None = None
    duration: Duration | None = None
    probability: float | None = Field(None, ge=0, le=1)
    node: str | None = None
    mode: FaultMode = "error"
    """How the call fails: an error at once; a hang until the HTTP timeout (wake, sleep: the
    engine may still finish); an engine that refuses to sleep (sleep); a 409 because the
    instance exists already (create: it was created by a call whose answer was lost)."""
    delay: Duration | None = None
    """watch_delay: the most an event is held back (drawn uniformly up to it)."""

    @model_validator(mode="after")
    def _has_a_trigger(self) -> "Fault":
        if self.kind in OCCURRENCE_FAULTS:
            if (self.at is None) == (self.rate_per_h is None):
                raise ValueError(f"{self.kind} needs exactly one of 'at' and 'rate_per_h'")
        else:
            if self.probability is None:
                raise ValueError(f"{self.kind} needs 'probability' (0 to 1)")
            if self.at is not None or self.rate_per_h is not None:
                raise ValueError(
                    f"{self.kind} is per operation: use start/until, not at/rate_per_h"
                )
        if self.mode not in FAULT_MODES.get(self.kind, ("error",)):
            allowed = ", ".join(FAULT_MODES.get(self.kind, ("error",)))
            raise ValueError(f"{self.kind} takes mode {allowed}, not {self.mode!r}")
        if self.kind == "watch_delay" and not self.delay:
            raise ValueError("watch_delay needs 'delay' (the longest hold-back)")
        if self.until is not None and self.until <= self.start:
            raise ValueError("'until' must be after 'start'")
        return self


class Slo(_Section):
    p95_actuation_s: float | None = Field(None, gt=0)
    hot_hit_rate: float | None = Field(None, ge=0, le=1)


class Scenario(_Section):
    """A whole scenario file (version 1)."""

    version: Literal[1] = 1
    name: str = Field(min_length=1)
    description: str = ""
    """What the scenario shows; printed at the top of its reports."""
    seed: int = 7
    duration: Duration
    cluster: Cluster
    models: list[Model] = Field(min_length=1)
    latency: Latency = Latency()
    launchers: Launchers = Launchers()
    policy: PolicySection = PolicySection()
    demand: list[Demand] = Field(min_length=1)
    faults: list[Fault] = Field(default_factory=list)
    slo: Slo = Slo()

    @field_validator("models")
    @classmethod
    def _expand_copies(cls, models: list[Model]) -> list[Model]:
        """Models with ``copies`` become single models; names must then be unique."""
        expanded = [single for m in models for single in m.expanded()]
        seen: set[str] = set()
        for m in expanded:
            if m.name in seen:
                raise ValueError(f"two models are named {m.name!r}")
            seen.add(m.name)
        return expanded

    @model_validator(mode="after")
    def _demand_names_known_models(self) -> "Scenario":
        """Check every model a demand names; expand the glob patterns of mixes into names."""
        names = [m.name for m in self.models]
        resolved: list[Demand] = []
        for i, d in enumerate(self.demand):
            if d.model is not None and d.model not in names:
                raise ValueError(f"demand[{i}].model: unknown model {d.model!r}")
            if d.models is None:
                resolved.append(d)
                continue
            mix: list[str] = []
            for j, pattern in enumerate(d.models):
                matches = [n for n in names if fnmatch.fnmatchcase(n, pattern)]
                if not matches:
                    raise ValueError(f"demand[{i}].models[{j}]: no model matches {pattern!r}")
                mix.extend(n for n in matches if n not in mix)
            resolved.append(d if mix == d.models else d.model_copy(update={"models": mix}))
        if resolved == self.demand:
            return self
        return self.model_copy(update={"demand": resolved})

    @model_validator(mode="after")
    def _models_fit_some_pool(self) -> "Scenario":
        for i, m in enumerate(self.models):
            per_gpu = m.weights_gib / m.gpus
            if not any(
                p.gpus_per_node >= m.gpus and p.gpu_memory_gib * m.gpu_memory_utilization >= per_gpu
                for p in self.cluster.node_pools
            ):
                raise ValueError(
                    f"models[{i}]: {m.name} needs {m.gpus} GPU(s) with {per_gpu:g} GiB each "
                    f"within {m.gpu_memory_utilization:g} of their memory; no node pool has them"
                )
        return self

    @model_validator(mode="after")
    def _faults_name_known_nodes(self) -> "Scenario":
        nodes = {f"{p.name}-{n}" for p in self.cluster.node_pools for n in range(p.count)}
        for i, f in enumerate(self.faults):
            if f.node is not None and f.node not in nodes:
                raise ValueError(f"faults[{i}].node: unknown node {f.node!r}")
        return self

    def model(self, name: str) -> Model:
        return next(m for m in self.models if m.name == name)
