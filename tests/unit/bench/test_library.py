"""Every shipped scenario: it loads, says what it shows, runs clean, and every command works."""

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from fma.api.loading import load_scenario
from fma.cli import app

SCENARIOS = sorted((Path(__file__).parents[3] / "sim" / "scenarios").glob("*.yaml"))
NAMES = [p.stem for p in SCENARIOS]
REQUIRED = {
    "demo",
    "multi-model-zipf",
    "diurnal-day",
    "burst-after-idle",
    "node-failure",
    "sleeper-memory-squeeze",
}
SHORT_S = 2 * 3600.0
"""Compare, plan and calibrate run on the first two hours: they test the plumbing per scenario;
the full runs are in test_scenario_runs_clean."""


def invoke(*args: str) -> dict[str, object]:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    parsed: dict[str, object] = json.loads(result.stdout)
    return parsed


def shortened(path: Path, tmp_path: Path) -> Path:
    scenario = load_scenario(path)
    short = scenario.model_copy(update={"duration": min(scenario.duration, SHORT_S)})
    target = tmp_path / path.name
    target.write_text(yaml.safe_dump(short.model_dump(mode="json")))
    return target


def test_the_library_is_complete() -> None:
    assert set(NAMES) >= REQUIRED


@pytest.mark.parametrize("path", SCENARIOS, ids=NAMES)
def test_scenario_runs_clean(path: Path, tmp_path: Path) -> None:
    scenario = load_scenario(path)
    assert scenario.name == path.stem
    assert len(scenario.description) > 40
    run = invoke("sim", "run", str(path), "--out", str(tmp_path), "--no-progress")
    assert run["invariant_violations"] == []
    assert run["actuations"]["hot"] > 0  # type: ignore[index]
    assert (tmp_path / "report.html").stat().st_size > 10_000


@pytest.mark.parametrize("path", SCENARIOS, ids=NAMES)
def test_every_command_works(path: Path, tmp_path: Path) -> None:
    short = shortened(path, tmp_path)
    compare = invoke(
        "sim", "compare", str(short), "--policy", "fma", "--policy", "cold", "--seeds", "1",
        "--workers", "1", "--out", str(tmp_path / "compare"), "--no-progress",
    )  # fmt: skip
    fma, cold = (v["pooled"] for v in compare["variants"])  # type: ignore[attr-defined]
    # What FMA is for: sleepers woken instead of engines started again. (Over the first two
    # hours its median may still be a start: a new launcher waits for its readiness probe,
    # and a node compiles each model once.)
    assert fma["hot_rate"] > 0
    assert cold["hot_rate"] == 0
    plan = invoke(
        "plan", str(short), "--vary", "launchers.per_node=1..1", "--target", "unserved>=0",
        "--seeds", "1", "--workers", "1", "--out", str(tmp_path / "plan"), "--no-progress",
    )  # fmt: skip
    assert plan["chosen"] == 1
    run = invoke("sim", "run", str(short), "--out", str(tmp_path / "run"), "--no-progress")
    assert run["sim_time_s"] == min(load_scenario(path).duration, SHORT_S)
    fitted = invoke("sim", "calibrate", str(tmp_path / "run" / "events.jsonl"))
    assert fitted["fitted"]
