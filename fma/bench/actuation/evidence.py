"""What is known of one requester's actuation: the timestamps every source can gather.

A trace (:mod:`fma.bench.actuation.trace`) and a live cluster
(:mod:`fma.bench.actuation.cluster`) each reduce what they saw to one :class:`Evidence` per
requester; classification, timings and the report are computed from that alone, so both
sources go through one code path. Every time is in the source's clock (a trace's ``t``; Unix
seconds for a cluster) and is None when the source did not see it; ``0.0`` is a time like any
other.

Kubernetes timestamps (``creationTimestamp``, a condition's ``lastTransitionTime``, a
container's ``startedAt``) have one-second resolution; the operator's own records and a trace's
times are finer. Which of the two a time is, the source knows; the fields say it in their names
only where it matters (``launcher_ready_before_bind`` is a judgement the source makes at its own
resolution).
"""

from dataclasses import dataclass, field
from enum import StrEnum


class ProviderKind(StrEnum):
    """What served the requester: a launcher's instance, or a direct provider Pod."""

    LAUNCHER = "launcher"
    DIRECT = "direct"


@dataclass(frozen=True, slots=True)
class Evidence:
    """One requester, what served it, and the moments of its actuation.

    Identity: ``requester`` (the source's id: a UID, or the simulator's requester id),
    ``requester_name``, ``namespace``. The provider it was (last) bound to: ``provider``,
    ``provider_kind``, ``container_name`` (the provider's first container), ``node``,
    ``instance`` (the bound instance), ``provider_created_s``, and
    ``launcher_ready_before_bind`` (True: the launcher was Ready before this requester was
    bound to it; False: it was not; None: unknown).

    The requester: ``requester_created_s``, ``container_started_s``, ``ready_s`` (its first
    readiness as the source saw it: a Pod's Ready condition, or a trace's relay), ``gpu_uuids``.

    The actuation window runs from the binding to readiness: ``bound_s``;
    ``provider_create_started_s`` (when the controller asked for a provider Pod made for this
    requester); ``instance_started_s`` (an engine start of the bound instance in the window);
    ``wake_started_s`` / ``wake_ended_s`` (a wake of the bound instance in the window);
    ``relayed_s`` (when the controller relayed readiness, by its own clock).
    ``wake_evidence`` says whether sleep/wake evidence covering the window was available at all
    (without it, a missing wake proves nothing).

    ``controller_path``: the path the controller itself recorded (``hot``, ``warm``,
    ``cold_launcher``, ``cold``), compared with, never used for, the classification.
    ``problems``: what the source could not read, in words.
    """

    requester: str
    requester_name: str | None = None
    namespace: str | None = None
    requester_created_s: float | None = None
    container_started_s: float | None = None
    ready_s: float | None = None
    gpu_uuids: tuple[str, ...] = ()
    provider: str | None = None
    provider_kind: ProviderKind | None = None
    container_name: str | None = None
    node: str | None = None
    instance: str | None = None
    provider_created_s: float | None = None
    launcher_ready_before_bind: bool | None = None
    bound_s: float | None = None
    provider_create_started_s: float | None = None
    instance_started_s: float | None = None
    wake_started_s: float | None = None
    wake_ended_s: float | None = None
    relayed_s: float | None = None
    wake_evidence: bool = False
    controller_path: str | None = None
    problems: tuple[str, ...] = field(default=())
