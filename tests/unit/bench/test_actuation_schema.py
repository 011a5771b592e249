"""The report's JSON Schema: exported, met by real reports, strict about what it accepts, and
documented field by field in docs/metrics.md (whose live example must meet it too)."""

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from typer.testing import CliRunner

from fma.adapters.sim.runner import run_scenario
from fma.api.scenario import Scenario
from fma.bench.actuation import schema
from fma.cli import app

DOCS = Path(__file__).resolve().parents[3] / "docs" / "metrics.md"


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The report of a simulated trace, through the command."""
    scenario = Scenario.model_validate(
        {
            "name": "schema",
            "seed": 3,
            "duration": "2h",
            "cluster": {"node_pools": [{"name": "n", "count": 1, "gpus_per_node": 2}]},
            "models": [{"name": "m", "weights_gib": 16, "engine_init_s": 20}],
            "launchers": {"max_instances": 2, "per_node": 0},
            "demand": [{"model": "m", "rate_per_h": 8, "hold": "2m"}],
        }
    )
    path = tmp_path_factory.mktemp("trace") / "events.jsonl"
    run_scenario(scenario).trace.write_jsonl(path)
    result = CliRunner().invoke(app, ["bench", "actuation", "--trace", str(path)])
    assert result.exit_code == 0, result.output
    found: dict[str, Any] = json.loads(result.stdout)
    return found


def validator() -> jsonschema.Draft202012Validator:
    exported = schema.json_schema()
    jsonschema.Draft202012Validator.check_schema(exported)
    return jsonschema.Draft202012Validator(exported)


def test_a_real_report_meets_the_schema(report: dict[str, Any]) -> None:
    validator().validate(report)
    conditions = {i["actuation_condition"] for i in report["iterations"][0]["launcher_infos"]}
    assert {"T_hot", "T_cold_launcher"} <= conditions


@pytest.mark.parametrize(
    ("where", "value"),
    [
        (("launcher_infos", 0, "actuation_condition"), "T_luke_warm"),  # upstream's old name
        (("launcher_infos", 0, "t_wake"), "3.2"),
        (("hot_hit_rate",), 1.5),
        (("launcher_infos", 0, "controller_path"), "lukewarm"),
        (("launcher_infos", 0, "surprise"), 1),
    ],
)
def test_the_schema_refuses_what_is_not_the_report(
    report: dict[str, Any], where: tuple[Any, ...], value: object
) -> None:
    broken = json.loads(json.dumps(report))
    node = broken["iterations"][0]
    for key in where[:-1]:
        node = node[key]
    node[where[-1]] = value
    with pytest.raises(jsonschema.ValidationError):
        validator().validate(broken)


def test_a_missing_rate_is_refused(report: dict[str, Any]) -> None:
    broken = json.loads(json.dumps(report))
    del broken["iterations"][0]["cold_launcher_hit_rate"]
    with pytest.raises(jsonschema.ValidationError, match="cold_launcher_hit_rate"):
        validator().validate(broken)


def test_the_command_prints_the_schema() -> None:
    result = CliRunner().invoke(app, ["bench", "actuation", "--schema"])
    assert result.exit_code == 0
    assert json.loads(result.stdout) == schema.json_schema()


def _fields() -> set[str]:
    models = (
        schema.ActuationMetrics,
        schema.Source,
        schema.Iteration,
        schema.LauncherInfo,
        schema.RequesterInfo,
        schema.ActuationTimestamps,
        schema.ExactTimings,
    )
    return {name for model in models for name in model.model_fields}


def test_docs_name_every_field() -> None:
    text = DOCS.read_text(encoding="utf-8")
    missing = sorted(f for f in _fields() if f"`{f}`" not in text)
    assert missing == []


def test_the_documented_live_run_meets_the_schema_and_shows_every_path() -> None:
    text = DOCS.read_text(encoding="utf-8")
    blocks = re.findall(r"```json\n(.*?)```", text, flags=re.S)
    live = [json.loads(b) for b in blocks if '"kind": "cluster"' in b]
    assert len(live) == 1
    validator().validate(live[0])
    (it,) = live[0]["iterations"]
    conditions = [i["actuation_condition"] for i in it["launcher_infos"]]
    assert {"T_cold_launcher", "T_warm", "T_hot"} <= set(conditions)
    assert it["disagreements"] == 0
