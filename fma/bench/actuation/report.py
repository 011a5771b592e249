"""From evidence to the report: one launcher info per requester, rates per iteration.

Pure: equal evidence gives an equal report. The rates' denominator is the number of
requesters that became ready (an actuation ends at readiness); see :class:`Iteration`.
"""

from collections.abc import Sequence
from typing import Literal, cast

from fma.bench.actuation.classify import (
    CONDITION_OF_PATH,
    ROUND,
    ActuationCondition,
    classify,
    exact_timings,
    upper_bounds,
)
from fma.bench.actuation.evidence import Evidence
from fma.bench.actuation.schema import (
    ActuationMetrics,
    ActuationTimestamps,
    ControllerPath,
    ExactTimings,
    Iteration,
    LauncherInfo,
    RequesterInfo,
    Source,
)

TimingSource = Literal["kube_pod_create", "trace"]


def launcher_info(e: Evidence, *, timing_source: TimingSource) -> LauncherInfo:
    """The report's entry for one requester."""
    verdict = classify(e)
    bounds = upper_bounds(e, verdict.condition)
    exact = exact_timings(e, verdict.condition)
    known = e.controller_path in CONDITION_OF_PATH
    controller_path = cast(ControllerPath, e.controller_path) if known else None
    return LauncherInfo(
        namespace=e.namespace,
        name=e.provider,
        pod_name=e.provider,
        container_name=e.container_name,
        provider_kind=e.provider_kind,
        launcher_node=e.node,
        vllm_instance_id=e.instance,
        requester_info=RequesterInfo(
            name=e.requester_name,
            uid=e.requester,
            creation_timestamp=e.requester_created_s,
            ready_timestamp=e.ready_s,
            container_start_timestamp=e.container_started_s,
            gpu_uuids=list(e.gpu_uuids),
        ),
        launcher_creation_timestamp=e.provider_created_s,
        launcher_ready_before_bind=e.launcher_ready_before_bind,
        actuation_condition=verdict.condition,
        reason=verdict.why,
        controller_path=controller_path,
        t_wake=bounds.t_wake,
        t_instance_create=bounds.t_instance_create,
        t_cold_launcher=bounds.t_cold_launcher,
        t_cold=bounds.t_cold,
        baseline=bounds.baseline,
        timing_source=timing_source,
        timestamps=ActuationTimestamps(
            bound=e.bound_s,
            provider_create_start=e.provider_create_started_s,
            instance_create_start=e.instance_started_s,
            wake_start=e.wake_started_s,
            wake_end=e.wake_ended_s,
            relay_ready=e.relayed_s,
        ),
        exact=ExactTimings(
            t_wake=exact.t_wake,
            t_instance_create=exact.t_instance_create,
            t_cold_launcher=exact.t_cold_launcher,
            t_cold=exact.t_cold,
        ),
        problems=list(e.problems),
    )


def iteration(number: int, infos: Sequence[LauncherInfo]) -> Iteration:
    """An iteration's entries and rates (each ÷ the requesters that became ready)."""
    ready = [i for i in infos if i.requester_info.ready_timestamp is not None]

    def rate(condition: ActuationCondition) -> float:
        count = sum(1 for i in ready if i.actuation_condition is condition)
        return round(count / len(ready), ROUND) if ready else 0.0

    disagreements = sum(
        1
        for i in ready
        if i.actuation_condition is not None
        and i.controller_path is not None
        and CONDITION_OF_PATH[i.controller_path] is not i.actuation_condition
    )
    cold_launcher = rate(ActuationCondition.T_COLD_LAUNCHER)
    return Iteration(
        iteration=number,
        launcher_infos=list(infos),
        actuations=len(ready),
        not_ready=len(infos) - len(ready),
        unclassified=sum(1 for i in ready if i.actuation_condition is None),
        disagreements=disagreements,
        hot_hit_rate=rate(ActuationCondition.T_HOT),
        warm_hit_rate=rate(ActuationCondition.T_WARM),
        cold_launcher_hit_rate=cold_launcher,
        cold_launcher_rate=cold_launcher,
        cold_rate=rate(ActuationCondition.T_COLD),
    )


def metrics(
    source: Source, observations: Sequence[Sequence[Evidence]], *, timing_source: TimingSource
) -> ActuationMetrics:
    """The report: one iteration per observation (a trace, or one watch of a namespace)."""
    return ActuationMetrics(
        source=source,
        iterations=[
            iteration(number, [launcher_info(e, timing_source=timing_source) for e in evidence])
            for number, evidence in enumerate(observations, start=1)
        ],
    )
