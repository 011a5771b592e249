"""The actuation metrics JSON: the seed's shape (llm-d-benchmark's ``FMAMetrics``), typed.

``fma bench actuation`` prints one :class:`ActuationMetrics`; :func:`json_schema` is its JSON
Schema (``fma bench actuation --schema``). Field by field, ``docs/metrics.md`` says what each
means. Upstream's names are kept where upstream has the field; a time that is unknown is
``null`` (upstream writes ``0.0``), and rates are ``0.0`` when there is nothing to divide.
"""

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from fma.bench.actuation.classify import ActuationCondition, Baseline
from fma.bench.actuation.evidence import ProviderKind

Seconds = float | None
ControllerPath = Literal["hot", "warm", "cold_launcher", "cold"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RequesterInfo(_Strict):
    """The server-requesting Pod."""

    name: str | None = Field(description="Pod name (the simulator's requester id in a trace)")
    uid: str = Field(description="Pod UID (the simulator's requester id in a trace)")
    creation_timestamp: Seconds = Field(description="when the Pod was created")
    ready_timestamp: Seconds = Field(description="when it first became ready; null: never")
    container_start_timestamp: Seconds = Field(
        description="when its inference-server container started"
    )
    gpu_uuids: list[str] = Field(description="the GPUs it holds")


class ActuationTimestamps(_Strict):
    """The controller's moments of this actuation, by its own clock."""

    bound: Seconds = Field(description="the binding was written")
    provider_create_start: Seconds = Field(
        description="the creation of a provider Pod made for this requester began"
    )
    instance_create_start: Seconds = Field(description="the engine start of its instance began")
    wake_start: Seconds = Field(description="the wake of its instance began")
    wake_end: Seconds = Field(description="the wake of its instance ended")
    relay_ready: Seconds = Field(description="readiness was relayed to the requester")


class ExactTimings(_Strict):
    """Timings from the controller's own moments to its readiness relay (one is set)."""

    t_wake: Seconds = Field(description="hot: relay_ready - wake_start")
    t_instance_create: Seconds = Field(description="warm: relay_ready - instance_create_start")
    t_cold_launcher: Seconds = Field(
        description="cold_launcher: relay_ready - provider_create_start"
    )
    t_cold: Seconds = Field(description="cold: relay_ready - provider_create_start")


class LauncherInfo(_Strict):
    """One requester's actuation and the provider that served it (upstream's
    ``FMALauncherInfo``, also for direct providers)."""

    namespace: str | None = Field(description="the namespace (null in a simulator trace)")
    name: str | None = Field(description="the provider Pod (launcher or direct); null: unbound")
    pod_name: str | None = Field(description="the same as name (upstream has both)")
    container_name: str | None = Field(description="the provider's first container")
    provider_kind: ProviderKind | None = Field(description="launcher or direct")
    launcher_node: str | None = Field(description="the node of the provider")
    vllm_instance_id: str | None = Field(description="the instance bound to the requester")
    requester_info: RequesterInfo
    launcher_creation_timestamp: Seconds = Field(description="when the provider Pod was created")
    launcher_ready_before_bind: bool | None = Field(
        description="the launcher was Ready before this requester was bound to it"
    )
    actuation_condition: ActuationCondition | None = Field(
        description="the path, judged from timestamps; null: no verdict (see reason)"
    )
    reason: str = Field(description="why this condition, or why none")
    controller_path: ControllerPath | None = Field(
        description="the path the controller recorded (for comparison only)"
    )
    t_wake: Seconds = Field(description="hot: ready - requester creation (upper bound)")
    t_instance_create: Seconds = Field(description="warm: ready - requester creation (upper bound)")
    t_cold_launcher: Seconds = Field(
        description="cold_launcher: ready - launcher creation (upper bound)"
    )
    t_cold: Seconds = Field(description="cold: ready - requester creation (upper bound)")
    baseline: Baseline | None = Field(description="what the upper bound counts from")
    timing_source: Literal["kube_pod_create", "trace"] = Field(
        description="kube_pod_create: Kubernetes timestamps; trace: the trace's times"
    )
    timestamps: ActuationTimestamps
    exact: ExactTimings
    problems: list[str] = Field(description="what could not be read for this requester")


class Iteration(_Strict):
    """One observation (a trace, or one watch of a namespace) and its rates.

    Every rate divides by ``actuations``: the requesters in ``launcher_infos`` that became
    ready. Requesters never ready are listed but not counted; a ready requester without a
    verdict counts in the denominator only, so the rates then sum to less than 1."""

    iteration: int = Field(ge=1)
    launcher_infos: list[LauncherInfo]
    actuations: int = Field(ge=0, description="ready requesters: the rates' denominator")
    not_ready: int = Field(ge=0, description="requesters listed that never became ready")
    unclassified: int = Field(ge=0, description="ready requesters without a verdict")
    disagreements: int = Field(
        ge=0, description="ready requesters whose verdict differs from the controller's path"
    )
    hot_hit_rate: float = Field(ge=0, le=1)
    warm_hit_rate: float = Field(ge=0, le=1)
    cold_launcher_hit_rate: float = Field(ge=0, le=1, description="upstream's name")
    cold_launcher_rate: float = Field(ge=0, le=1, description="the seed's name, same value")
    cold_rate: float = Field(ge=0, le=1)


class Source(_Strict):
    """Where the evidence came from."""

    kind: Literal["trace", "cluster"]
    traces: list[str] = Field(description="trace files, one iteration each")
    namespace: str | None = Field(description="the namespace watched")
    operator_records: list[str] = Field(
        description="operator logs or traces read for the controller's moments"
    )


class ActuationMetrics(_Strict):
    """The whole report (upstream's ``FMAMetrics``)."""

    name: Literal["fma"] = "fma"
    source: Source
    iterations: list[Iteration]


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the report."""
    return ActuationMetrics.model_json_schema()
