"""Properties of whole simulated runs over generated scenarios.

A failure prints the scenario (with its seed); replay it with
``HYPOTHESIS_PROFILE=debug pytest tests/property -k <name>``, or save the printed scenario and run
``fma sim run`` on it.
"""

from hypothesis import given, note

from fma.adapters.sim.runner import run_scenario
from fma.api.scenario import Scenario
from fma.bench.invariants import check_all
from tests.property.strategies import fits, scenarios

DRAIN_S = 30 * 86400.0
"""Long enough for any generated queue to drain: the run ends early in events, not time."""


def _replay_hint(scenario: Scenario) -> None:
    note(f"replay: fma sim run <file> --seed {scenario.seed}\n{scenario.model_dump_json()}")


@given(scenarios())
def test_no_gpu_is_ever_held_by_two_awake_instances(scenario: Scenario) -> None:
    _replay_hint(scenario)
    result = run_scenario(scenario)
    assert check_all(result.trace.events) == []


@given(scenarios())
def test_every_requester_that_fits_becomes_ready(scenario: Scenario) -> None:
    """Liveness: once demand stops, nothing that fits is left waiting."""
    _replay_hint(scenario)
    result = run_scenario(scenario, drain_s=DRAIN_S)
    state = {e["requester"]: e for e in result.trace.events if e["kind"] == "requester_created"}
    waiting = [uid for uid in result.unserved if fits(scenario, state[uid]["model"])]
    assert waiting == []
