"""`--vary PATH=LO..HI[:STEP]`: values, paths, and errors that name the problem."""

import pytest

from fma.api.loading import InputError
from fma.api.scenario import Scenario
from fma.plan.vary import apply, parse_vary


def test_integer_and_float_ranges() -> None:
    assert parse_vary("cluster.node_pools[0].count=1..5").values == (1, 2, 3, 4, 5)
    assert parse_vary("launchers.per_node=0..6:2").values == (0, 2, 4, 6)
    assert parse_vary("policy.sleeping_gib_per_gpu_max=0..1:0.25").values == (
        0.0,
        0.25,
        0.5,
        0.75,
        1.0,
    )


def test_apply_sets_the_field_and_revalidates(small: Scenario) -> None:
    vary = parse_vary("cluster.node_pools[0].count=1..3")
    assert apply(small, vary, 3, "s.yaml").cluster.node_pools[0].count == 3
    budget = parse_vary("policy.sleeping_gib_per_gpu_max=0..64:16")
    assert apply(small, budget, 32.0, "s.yaml").policy.sleeping_gib_per_gpu_max == 32
    assert apply(small, budget, 32.0, "s.yaml").demand == small.demand


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("nodes=1..4", "--vary: the scenario has no field nodes"),
        ("cluster.node_pools[2].count=1..4", "no field cluster.node_pools[2]"),
        ("cluster..count=1..4", "is not a field path"),
        ("launchers.per_node=4..1", "need LO <= HI"),
        ("launchers.per_node=1-4", "expected PATH=LO..HI"),
        ("launchers.per_node=0..1:0.5", "launchers.per_node: Input should be a valid integer"),
        ("cluster.node_pools[0].count=-1..1", "count: Input should be greater than or equal to 0"),
    ],
)
def test_bad_vary(small: Scenario, text: str, message: str) -> None:
    with pytest.raises(InputError) as error:
        vary = parse_vary(text)
        for value in vary.values:
            apply(small, vary, value, "s.yaml")
    assert message in str(error.value)
