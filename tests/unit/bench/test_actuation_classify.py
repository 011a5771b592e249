"""The verdict and the timings from evidence alone, and the rates of an iteration."""

from dataclasses import replace

import pytest

from fma.bench.actuation.classify import ActuationCondition as C
from fma.bench.actuation.classify import Baseline, classify, exact_timings, upper_bounds
from fma.bench.actuation.evidence import Evidence, ProviderKind
from fma.bench.actuation.report import iteration, launcher_info

LAUNCHER = Baseline.LAUNCHER_CREATION
CREATED = 1000.0
"""The requester's creationTimestamp (whole seconds, as Kubernetes gives it)."""


def served(**changes: object) -> Evidence:
    """A requester served by a launcher made before it: warm, ready 12 s after creation."""
    base = Evidence(
        requester="uid-1",
        requester_name="req-1",
        requester_created_s=CREATED,
        ready_s=CREATED + 12,
        provider="launcher-a",
        provider_kind=ProviderKind.LAUNCHER,
        provider_created_s=CREATED - 300,
        launcher_ready_before_bind=True,
        bound_s=CREATED + 2.5,
        instance="i-1",
        instance_started_s=CREATED + 2.6,
        relayed_s=CREATED + 11.4,
        wake_evidence=True,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def hot(**changes: object) -> Evidence:
    woken = {"instance_started_s": None, "wake_started_s": CREATED + 2.7}
    return served(**{**woken, "wake_ended_s": CREATED + 3.1, **changes})


def cold_launcher(**changes: object) -> Evidence:
    """A launcher created for the requester, after it, Ready only after the binding."""
    made = {
        "provider_created_s": CREATED + 2,
        "launcher_ready_before_bind": False,
        "bound_s": CREATED + 2.4,
        "provider_create_started_s": CREATED + 2.4,
        "instance_started_s": CREATED + 9.0,
        "ready_s": CREATED + 20,
        "relayed_s": CREATED + 19.5,
    }
    return served(**{**made, **changes})


# --- the rules -----------------------------------------------------------------------------------


def test_a_wake_of_the_bound_instance_after_the_binding_is_hot() -> None:
    assert classify(hot()).condition is C.T_HOT


def test_a_wake_followed_by_an_engine_start_is_not_hot() -> None:
    # The sleeper it meant to wake vanished and a new instance was started instead.
    evidence = hot(instance_started_s=CREATED + 5)
    assert classify(evidence).condition is C.T_WARM


def test_a_hot_launcher_made_after_the_requester_is_still_hot() -> None:
    assert classify(hot(provider_created_s=CREATED + 1)).condition is C.T_HOT


def test_a_launcher_created_before_the_requester_is_warm() -> None:
    verdict = classify(served(launcher_ready_before_bind=None))
    assert verdict.condition is C.T_WARM
    assert "before the requester" in verdict.why


def test_a_launcher_created_after_the_requester_is_cold_launcher() -> None:
    assert classify(cold_launcher()).condition is C.T_COLD_LAUNCHER


def test_a_launcher_made_meanwhile_and_ready_before_the_binding_is_warm() -> None:
    # Created by the populator after the requester, Ready before the controller chose it.
    evidence = served(provider_created_s=CREATED + 5, bound_s=CREATED + 40)
    verdict = classify(evidence)
    assert verdict.condition is C.T_WARM
    assert "Ready before" in verdict.why


def test_a_direct_provider_with_nothing_woken_is_cold() -> None:
    evidence = served(provider_kind=ProviderKind.DIRECT, launcher_ready_before_bind=None)
    assert classify(evidence).condition is C.T_COLD
    assert classify(replace(hot(), provider_kind=ProviderKind.DIRECT)).condition is C.T_HOT


def test_pod_names_play_no_part() -> None:
    # Upstream's heuristic took a "launcher-fma-" prefix for warm; names here say the opposite.
    warm = served(provider="cold-launcher-for-req-1", requester_name="launcher-fma-x")
    assert classify(warm).condition is C.T_WARM
    assert classify(cold_launcher(provider="launcher-fma-1")).condition is C.T_COLD_LAUNCHER


# --- equal timestamps at one-second resolution ---------------------------------------------------


def test_a_launcher_created_in_the_same_second_counts_as_made_for_the_requester() -> None:
    same_second = cold_launcher(provider_created_s=CREATED, launcher_ready_before_bind=None)
    assert classify(same_second).condition is C.T_COLD_LAUNCHER


def test_the_same_second_is_warm_only_with_readiness_before_the_binding() -> None:
    same_second = cold_launcher(provider_created_s=CREATED, launcher_ready_before_bind=True)
    assert classify(same_second).condition is C.T_WARM


def test_a_wake_in_the_second_of_creation_still_counts() -> None:
    evidence = hot(wake_started_s=CREATED, wake_ended_s=CREATED, ready_s=CREATED)
    assert classify(evidence).condition is C.T_HOT
    assert upper_bounds(evidence, C.T_HOT).t_wake == 0.0  # a value, not "missing"


# --- missing timestamps --------------------------------------------------------------------------


def test_an_unknown_launcher_creation_gives_no_verdict() -> None:
    verdict = classify(served(provider_created_s=None))
    assert verdict.condition is None
    assert "launcher's creation time is unknown" in verdict.why


def test_an_unknown_requester_creation_gives_no_verdict_unless_readiness_decides() -> None:
    unknown = cold_launcher(requester_created_s=None)
    assert classify(unknown).condition is None
    assert "requester's creation time is unknown" in classify(unknown).why
    assert classify(served(requester_created_s=None)).condition is C.T_WARM


def test_missing_times_leave_the_timings_empty() -> None:
    evidence = cold_launcher(provider_create_started_s=None, relayed_s=None)
    assert upper_bounds(evidence, C.T_COLD_LAUNCHER).t_cold_launcher == 18.0
    exact = exact_timings(evidence, C.T_COLD_LAUNCHER)
    assert exact.t_cold_launcher is None


def test_without_sleep_wake_evidence_a_missing_wake_proves_nothing() -> None:
    evidence = served(instance_started_s=None, wake_evidence=False)
    verdict = classify(evidence)
    assert verdict.condition is None
    assert "no sleep/wake evidence" in verdict.why
    # An engine start seen is evidence enough that nothing was woken.
    assert classify(served(wake_evidence=False)).condition is C.T_WARM


def test_a_requester_never_bound_has_no_verdict() -> None:
    evidence = Evidence(requester="uid-9", requester_created_s=CREATED)
    assert classify(evidence).condition is None
    assert classify(evidence).why == "never bound to a provider"


# --- not ready, and a wake not yet observed ------------------------------------------------------


def test_a_requester_never_ready_is_classified_without_timings() -> None:
    evidence = cold_launcher(ready_s=None, relayed_s=None)
    assert classify(evidence).condition is C.T_COLD_LAUNCHER
    assert upper_bounds(evidence, C.T_COLD_LAUNCHER).t_cold_launcher is None


def test_a_wake_not_yet_observed_gives_no_verdict_while_not_ready() -> None:
    pending = served(instance_started_s=None, ready_s=None, relayed_s=None)
    verdict = classify(pending)
    assert verdict.condition is None
    assert "neither a wake nor an engine start" in verdict.why


def test_a_wake_in_flight_is_hot_without_timings() -> None:
    waking = hot(wake_ended_s=None, ready_s=None, relayed_s=None)
    assert classify(waking).condition is C.T_HOT
    assert upper_bounds(waking, C.T_HOT).t_wake is None
    assert exact_timings(waking, C.T_HOT).t_wake is None


def test_hot_needs_no_sleep_after_the_wake() -> None:
    # Upstream's rule wanted the log to end (wake, sleep) and missed a wake not yet slept.
    assert classify(hot(wake_ended_s=None)).condition is C.T_HOT


# --- timings -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("evidence", "condition", "field", "bound", "baseline", "exact"),
    [
        (hot(), C.T_HOT, "t_wake", 12.0, Baseline.REQUESTER_CREATION, 8.7),
        (served(), C.T_WARM, "t_instance_create", 12.0, Baseline.REQUESTER_CREATION, 8.8),
        (
            cold_launcher(),
            C.T_COLD_LAUNCHER,
            "t_cold_launcher",
            18.0,
            Baseline.LAUNCHER_CREATION,
            17.1,
        ),
    ],
)
def test_each_path_has_its_own_timing(
    evidence: Evidence,
    condition: C,
    field: str,
    bound: float,
    baseline: Baseline,
    exact: float,
) -> None:
    assert classify(evidence).condition is condition
    upper = upper_bounds(evidence, condition)
    assert getattr(upper, field) == bound
    assert upper.baseline is baseline
    others = {"t_wake", "t_instance_create", "t_cold_launcher", "t_cold"} - {field}
    assert all(getattr(upper, f) is None for f in others)
    assert getattr(exact_timings(evidence, condition), field) == pytest.approx(exact)


def test_cold_timing_counts_from_the_requester_and_the_pod_creation_call() -> None:
    evidence = served(
        provider_kind=ProviderKind.DIRECT,
        provider_created_s=CREATED + 3,
        provider_create_started_s=CREATED + 2.9,
        instance_started_s=CREATED + 2.9,
    )
    assert upper_bounds(evidence, C.T_COLD).t_cold == 12.0
    assert exact_timings(evidence, C.T_COLD).t_cold == pytest.approx(8.5)


# --- the iteration -------------------------------------------------------------------------------


def test_rates_divide_by_the_requesters_that_became_ready() -> None:
    infos = [
        launcher_info(hot(requester="a"), timing_source="trace"),
        launcher_info(served(requester="b"), timing_source="trace"),
        launcher_info(served(requester="c", provider_created_s=None), timing_source="trace"),
        launcher_info(cold_launcher(requester="d", ready_s=None), timing_source="trace"),
    ]
    it = iteration(1, infos)
    assert (it.actuations, it.not_ready, it.unclassified) == (3, 1, 1)
    assert it.hot_hit_rate == it.warm_hit_rate == pytest.approx(1 / 3, abs=1e-6)
    assert it.cold_launcher_hit_rate == it.cold_launcher_rate == 0.0
    assert len(it.launcher_infos) == 4  # the never-ready requester is reported


def test_an_empty_iteration_has_zero_rates() -> None:
    it = iteration(1, [launcher_info(cold_launcher(ready_s=None), timing_source="trace")])
    assert it.actuations == 0
    assert it.hot_hit_rate == it.warm_hit_rate == it.cold_launcher_hit_rate == it.cold_rate == 0.0


def test_disagreements_with_the_controller_are_counted() -> None:
    evidence = [
        hot(requester="a", controller_path="hot"),
        served(requester="b", controller_path="cold_launcher"),
        hot(requester="c", controller_path="warm"),
        served(requester="d", controller_path="bogus"),
    ]
    it = iteration(1, [launcher_info(e, timing_source="trace") for e in evidence])
    assert it.disagreements == 2
    assert it.launcher_infos[3].controller_path is None
