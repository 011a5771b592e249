"""Properties of whole simulated runs over generated scenarios, without and with faults.

Every run drains after its demand until the cluster is quiet, so the checkers judge safety
throughout, liveness once faults are off, and leaks at the end. A failure prints the scenario's
seed and a one-line replay command (:mod:`tests.property.replay`).
"""

from hypothesis import given

from fma.api.scenario import Scenario
from fma.bench.invariants import check_all
from tests.property.replay import replay_note, run_drained
from tests.property.strategies import fits, scenarios


def _quiet(events: list[dict[str, object]]) -> bool:
    return any(e["kind"] == "quiescent" for e in events)


@given(scenarios())
def test_every_invariant_holds_without_faults(scenario: Scenario) -> None:
    replay_note(scenario)
    result = run_drained(scenario)
    assert _quiet(result.trace.events)
    assert check_all(result.trace.events) == []


@given(scenarios(faults=True))
def test_every_invariant_holds_under_faults(scenario: Scenario) -> None:
    """Safety while faults last; liveness after them; nothing leaked once quiet."""
    replay_note(scenario)
    result = run_drained(scenario)
    assert _quiet(result.trace.events)
    assert check_all(result.trace.events) == []


@given(scenarios(faults=True))
def test_every_requester_that_fits_becomes_ready(scenario: Scenario) -> None:
    """Liveness, seen from the workload: once demand stops, nothing that fits is left waiting."""
    replay_note(scenario)
    result = run_drained(scenario)
    state = {e["requester"]: e for e in result.trace.events if e["kind"] == "requester_created"}
    waiting = [uid for uid in result.unserved if fits(scenario, state[uid]["model"])]
    assert waiting == []
