"""Which path served a requester, judged from timestamps alone, and how long it took.

Pure: no I/O, no clock; equal evidence gives an equal answer. Pod names are never looked at.
The rules, in order (first that applies):

1. ``T_hot`` — a wake of the bound instance began after the binding, and no engine start of
   that instance happened since: the requester was served by waking a sleeper.
2. No verdict — the requester is not ready and neither a wake nor an engine start was seen
   since its binding (a wake not yet observed: any path is still possible); or no sleep/wake
   evidence covered the window and no engine start was seen (a missing wake proves nothing).
3. ``T_cold`` — the provider is a direct provider (no launcher) and nothing was woken.
4. ``T_warm`` — the launcher Pod was created strictly before the requester Pod (upstream's
   rule: a pre-existing launcher); or it was created after the requester but was Ready before
   the requester was bound to it (made meanwhile by the launcher populator, it pre-existed when
   the controller chose it).
5. ``T_cold_launcher`` — otherwise: the launcher was created at or after the requester and was
   not Ready before the binding (the controller made it for this requester). Equal creation
   timestamps, which one-second resolution makes common, land here unless rule 4's readiness
   evidence says otherwise.

Missing timestamps give no verdict (with the reason) rather than a guess: a launcher whose
creation time is unknown, or a requester whose creation time is unknown when nothing else
decides.

Timings. The upper bounds follow the seed, from Kubernetes timestamps: ``t_wake`` (hot) and
``t_instance_create`` (warm) are ready less requester creation; ``t_cold_launcher`` is ready
less launcher creation; ``t_cold`` (direct) is ready less requester creation. They include the
kubelet's probe period and the one-second rounding. The exact timings take the controller's own
moments: readiness relayed less the wake's start (hot), less the instance creation's start
(warm), less the start of the provider Pod's creation (cold_launcher and cold).
"""

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from fma.bench.actuation.evidence import Evidence, ProviderKind

ROUND: Final = 6


class ActuationCondition(StrEnum):
    """The seed's names for the four actuation paths."""

    T_HOT = "T_hot"
    T_WARM = "T_warm"
    T_COLD_LAUNCHER = "T_cold_launcher"
    T_COLD = "T_cold"


CONDITION_OF_PATH: Final = {
    "hot": ActuationCondition.T_HOT,
    "warm": ActuationCondition.T_WARM,
    "cold_launcher": ActuationCondition.T_COLD_LAUNCHER,
    "cold": ActuationCondition.T_COLD,
}
"""The controller's path names (``docs/events.md``) as conditions."""


class Baseline(StrEnum):
    """What an upper-bound timing is measured from."""

    REQUESTER_CREATION = "requester_creation"
    LAUNCHER_CREATION = "launcher_creation"


@dataclass(frozen=True, slots=True)
class Verdict:
    """A condition (None: no verdict) and why, in words."""

    condition: ActuationCondition | None
    why: str


@dataclass(frozen=True, slots=True)
class Timings:
    """Seconds per path; only the one of the verdict's path is set (None when a time is
    missing). ``baseline``: what the upper bound counts from."""

    t_wake: float | None = None
    t_instance_create: float | None = None
    t_cold_launcher: float | None = None
    t_cold: float | None = None
    baseline: Baseline | None = None


def classify(e: Evidence) -> Verdict:
    """The path that served the requester (see the module docstring for the rules)."""
    if e.wake_started_s is not None and e.instance_started_s is None:
        return Verdict(ActuationCondition.T_HOT, "a wake of its instance began after its binding")
    if e.provider_kind is None:
        return Verdict(None, "never bound to a provider")
    if e.instance_started_s is None:
        if e.ready_s is None:
            return Verdict(None, "not ready, and neither a wake nor an engine start seen yet")
        if not e.wake_evidence:
            return Verdict(None, "no sleep/wake evidence, and no engine start seen")
    if e.provider_kind is ProviderKind.DIRECT:
        return Verdict(ActuationCondition.T_COLD, "a direct provider, nothing woken")
    if e.provider_created_s is None:
        return Verdict(None, "the launcher's creation time is unknown")
    if e.requester_created_s is not None and e.provider_created_s < e.requester_created_s:
        return Verdict(ActuationCondition.T_WARM, "the launcher was created before the requester")
    if e.launcher_ready_before_bind:
        return Verdict(
            ActuationCondition.T_WARM, "the launcher was Ready before the requester was bound"
        )
    if e.requester_created_s is None:
        return Verdict(None, "the requester's creation time is unknown")
    return Verdict(
        ActuationCondition.T_COLD_LAUNCHER,
        "the launcher was created at or after the requester, not Ready before the binding",
    )


def _since(end_s: float | None, start_s: float | None) -> float | None:
    if end_s is None or start_s is None:
        return None
    return round(end_s - start_s, ROUND)


def upper_bounds(e: Evidence, condition: ActuationCondition | None) -> Timings:
    """The seed's timings from creation to readiness (upper bounds)."""
    match condition:
        case ActuationCondition.T_HOT:
            return Timings(
                t_wake=_since(e.ready_s, e.requester_created_s),
                baseline=Baseline.REQUESTER_CREATION,
            )
        case ActuationCondition.T_WARM:
            return Timings(
                t_instance_create=_since(e.ready_s, e.requester_created_s),
                baseline=Baseline.REQUESTER_CREATION,
            )
        case ActuationCondition.T_COLD_LAUNCHER:
            return Timings(
                t_cold_launcher=_since(e.ready_s, e.provider_created_s),
                baseline=Baseline.LAUNCHER_CREATION,
            )
        case ActuationCondition.T_COLD:
            return Timings(
                t_cold=_since(e.ready_s, e.requester_created_s),
                baseline=Baseline.REQUESTER_CREATION,
            )
        case None:
            return Timings()


def exact_timings(e: Evidence, condition: ActuationCondition | None) -> Timings:
    """The timings from the controller's own moments to its readiness relay."""
    match condition:
        case ActuationCondition.T_HOT:
            return Timings(t_wake=_since(e.relayed_s, e.wake_started_s))
        case ActuationCondition.T_WARM:
            return Timings(t_instance_create=_since(e.relayed_s, e.instance_started_s))
        case ActuationCondition.T_COLD_LAUNCHER:
            return Timings(t_cold_launcher=_since(e.relayed_s, e.provider_create_started_s))
        case ActuationCondition.T_COLD:
            return Timings(t_cold=_since(e.relayed_s, e.provider_create_started_s))
        case None:
            return Timings()
