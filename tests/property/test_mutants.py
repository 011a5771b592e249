"""Mutation canaries: the state machine's *search* must find each seeded mutant of the core.

A fixed scenario can show that a checker sees a bug once it happens; it cannot show that the
search makes it happen. Here every mutant of :mod:`tests.property.mutants` is applied in turn
and the state machine's search is run on it with the ``ci`` budget (400 derandomized examples,
no shrinking): it must fail, and on the invariant the mutant is meant to break. The number
of examples the search needed is printed (``-s``). One derandomized search is one draw:
``bench/mutants.py`` hunts each mutant under several seeds and records how often the ``ci``
profile's 400 examples suffice.
"""

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis.stateful import run_state_machine_as_test

from tests.property.mutants import MUTANTS, Mutant
from tests.property.test_cluster_machine import STEPS_MAX, ClusterMachine

EXAMPLES = 400
"""The ``ci`` profile's budget."""
BUDGET = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    phases=(Phase.explicit, Phase.generate),
    stateful_step_count=STEPS_MAX,
    suppress_health_check=list(HealthCheck),
    print_blob=False,
)
"""The search's budget, without shrinking: only finding counts here."""


def hunt(mutant: Mutant) -> tuple[int, str]:
    """Run the search on the mutant: (examples it took, the failure's message)."""
    ClusterMachine.examples = 0
    with mutant.applied():
        try:
            run_state_machine_as_test(ClusterMachine, settings=BUDGET)
        except AssertionError as failure:
            return ClusterMachine.examples, str(failure)
    return ClusterMachine.examples, ""


@pytest.mark.slow
@pytest.mark.parametrize("mutant", MUTANTS, ids=lambda m: m.name)
def test_the_search_finds_the_mutant(mutant: Mutant) -> None:
    examples, failure = hunt(mutant)
    print(f"{mutant.name}: found after {examples} examples" if failure else "missed")
    assert failure, f"the search missed {mutant.name!r} in {examples} examples"
    assert mutant.caught_by in failure, failure[:500]
