"""`fma plan`: the smallest value meeting every target, a JSON table and a report."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).parents[2]
SCENARIO = {
    "name": "tiny-plan",
    "duration": "1h",
    "cluster": {"node_pools": [{"name": "n", "count": 1, "gpus_per_node": 2, "disk_gbps": 2}]},
    "models": [{"name": "a", "weights_gib": 8, "engine_init_s": 20}],
    "policy": {"actuation": "direct-sleep"},
    "demand": [{"model": "a", "rate_per_h": 60, "hold": "10m"}],
}


def fma(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fma", *args], capture_output=True, text=True, cwd=ROOT, timeout=300
    )


@pytest.fixture
def scenario(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(SCENARIO))
    return path


def plan(scenario: Path, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return fma(
        "plan", str(scenario), "--vary", "cluster.node_pools[0].count=1..8",
        "--target", "p95_wait_s<=90", "--target", "unserved<=0", "--seeds", "2",
        "--out", str(out), *extra,
    )  # fmt: skip


def test_plan_finds_the_smallest_node_count(scenario: Path, tmp_path: Path) -> None:
    result = plan(scenario, tmp_path / "bisect", "--workers", "1")
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    chosen = answer["chosen"]
    rows = {row["value"]: row for row in answer["table"]}
    assert chosen is not None and rows[chosen]["meets_all"]
    assert chosen == 1 or not rows[chosen - 1]["meets_all"]  # the neighbour below was run
    assert chosen == 8 or rows[chosen + 1]["meets_all"]  # and the one above
    assert answer["evaluated"] < 8
    assert all(len(r["targets"]["p95_wait_s<=90"]["per_seed"]) == 2 for r in answer["table"])
    assert json.loads((tmp_path / "bisect" / "plan.json").read_text()) == answer
    html = (tmp_path / "bisect" / "report.html").read_text()
    assert html.count('src="data:image/png;base64,') == 2

    grid = json.loads(plan(scenario, tmp_path / "grid", "--search", "grid").stdout)
    assert grid["evaluated"] == 8 and grid["chosen"] == chosen
    assert {r["value"]: r for r in grid["table"]}[chosen] == rows[chosen]


def test_plan_over_the_sleeping_budget(scenario: Path, tmp_path: Path) -> None:
    result = fma(
        "plan", str(scenario), "--vary", "policy.sleeping_gib_per_gpu_max=0..16:8",
        "--target", "hot_hit_rate>=0.3", "--seeds", "1", "--out", str(tmp_path), "--workers", "1",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["values"] == [0.0, 8.0, 16.0]
    rows = {row["value"]: row for row in answer["table"]}
    assert rows[0.0]["targets"]["hot_hit_rate>=0.3"]["mean"] == 0  # no room to sleep: no hot
    assert answer["chosen"] == 8.0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--vary", "nodes=1..3", "--target", "unserved<=0"], "--vary: the scenario has no field"),
        (["--vary", "launchers.per_node=0..2", "--target", "speed>=1"], "--target: unknown metric"),
        (["--vary", "launchers.per_node=0..2", "--target", "unserved=<1"], "expected NAME OP"),
        (
            ["--vary", "launchers.per_node=0..2", "--target", "unserved<1", "--search", "x"],
            "--search",
        ),
    ],
)
def test_bad_plans_are_one_line(
    scenario: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    result = fma("plan", str(scenario), *args, "--out", str(tmp_path / "o"))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0]
    assert not (tmp_path / "o").exists()
