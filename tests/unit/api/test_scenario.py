"""Scenario files: durations, defaults and one-line errors naming the field."""

from pathlib import Path

import pytest

from fma.api.loading import InputError, load_scenario
from fma.api.scenario import parse_duration_s

SCENARIOS = Path(__file__).parents[3] / "sim" / "scenarios"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [(90, 90.0), ("90", 90.0), ("90s", 90.0), ("1.5m", 90.0), ("2h", 7200.0), ("1d", 86400.0)],
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration_s(text) == seconds


@pytest.mark.parametrize("text", ["-1", "1w", "soon", True, -5])
def test_bad_durations(text: object) -> None:
    with pytest.raises(ValueError):
        parse_duration_s(text)


def test_demo_scenario_loads() -> None:
    scenario = load_scenario(SCENARIOS / "demo.yaml")
    assert scenario.duration == 4 * 3600
    assert scenario.policy.actuation == "fma"


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        (
            "name: x\nduration: 1h\ncluster: {node_pools: []}\n"
            "models: [{name: m, weights_gib: 1}]\ndemand: [{model: m}]\n",
            "cluster.node_pools: List should have at least 1 item",
        ),
        (
            "name: x\nduration: 1h\ncluster: {node_pools: [{name: a, count: 1}]}\n"
            "models: [{name: m, weights_gib: 1}]\ndemand: [{model: nope}]\n",
            "demand[0].model: unknown model 'nope'",
        ),
        (
            "name: x\nduration: 1h\ncluster: {node_pools: [{name: a, count: -1}]}\n"
            "models: [{name: m, weights_gib: 1}]\ndemand: [{model: m}]\n",
            "cluster.node_pools[0].count: Input should be greater than or equal to 0",
        ),
        (
            "name: x\nduration: forever\ncluster: {node_pools: [{name: a, count: 1}]}\n"
            "models: [{name: m, weights_gib: 1}]\ndemand: [{model: m}]\n",
            "duration: not a duration",
        ),
        (
            "name: x\nduration: 1h\ncolour: blue\ncluster: {node_pools: [{name: a, count: 1}]}\n"
            "models: [{name: m, weights_gib: 1}]\ndemand: [{model: m}]\n",
            "colour: unknown field",
        ),
        ("name: [unclosed\n", "not valid YAML"),
        ("- just\n- a list\n", "expected a mapping"),
    ],
    ids=[
        "empty-pools",
        "unknown-model",
        "negative-count",
        "bad-duration",
        "unknown-field",
        "bad-yaml",
        "not-a-mapping",
    ],
)
def test_bad_scenarios_name_the_field(tmp_path: Path, yaml_text: str, expected: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml_text)
    with pytest.raises(InputError) as error:
        load_scenario(path)
    message = str(error.value)
    assert expected in message
    assert "\n" not in message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read"):
        load_scenario(tmp_path / "absent.yaml")
