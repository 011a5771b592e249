"""The classification from timestamps agrees with the controller's own record, for every
actuation of every generated run, without and with faults.

The controller records each actuation's path when it decides it (``bind``, ``path_changed``)
and writes it into its ``actuation`` event; ``fma bench actuation`` judges the same trace from
its timestamps alone (:mod:`fma.bench.actuation`). Every actuation must get a verdict, and the
verdict must be the controller's path. A failure prints the scenario's seed and a one-line
replay command (:mod:`tests.property.replay`).
"""

from hypothesis import given

from fma.api.scenario import Scenario
from fma.bench.actuation.classify import CONDITION_OF_PATH, classify
from fma.bench.actuation.from_trace import evidence_from_events
from tests.property.replay import replay_note, run_drained
from tests.property.strategies import scenarios


def _mismatches(scenario: Scenario) -> list[tuple[str, str, str | None, str]]:
    """(requester, the controller's path, the verdict, why) of every actuation they differ on."""
    replay_note(scenario)
    events = run_drained(scenario).trace.events
    evidence = {e.requester: e for e in evidence_from_events(events)}
    found = []
    for event in events:
        if event["kind"] != "actuation":
            continue
        verdict = classify(evidence[event["requester"]])
        if verdict.condition is not CONDITION_OF_PATH[event["path"]]:
            condition = verdict.condition.value if verdict.condition else None
            found.append((event["requester"], event["path"], condition, verdict.why))
    return found


@given(scenarios())
def test_every_actuation_is_classified_as_the_controller_recorded_it(scenario: Scenario) -> None:
    assert _mismatches(scenario) == []


@given(scenarios(faults=True))
def test_every_actuation_is_classified_as_the_controller_recorded_it_under_faults(
    scenario: Scenario,
) -> None:
    assert _mismatches(scenario) == []
