"""The `fma` command as users run it: outputs, files, and one-line errors."""

import json
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).parents[2]


def fma(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fma", *args], capture_output=True, text=True, cwd=ROOT, timeout=120
    )


def test_sim_run_prints_the_summary_and_writes_the_files(tmp_path: Path) -> None:
    result = fma("sim", "run", "sim/scenarios/demo.yaml", "--seed", "3", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    for key in (
        "scenario",
        "seed",
        "sim_time_s",
        "wall_s",
        "events",
        "actuations",
        "hot_hit_rate",
        "warm_hit_rate",
        "cold_launcher_rate",
        "actuation_latency_s",
        "unserved",
        "gpu_utilization",
        "invariant_violations",
        "slo",
    ):
        assert key in summary
    assert summary["seed"] == 3
    actuations = summary["actuations"]
    paths = ("hot", "warm", "cold_launcher", "cold")
    assert actuations["total"] == sum(actuations[p] for p in paths)
    assert actuations["hot"] > 0 and actuations["warm"] > 0  # launchers are pre-warmed
    assert json.loads((tmp_path / "summary.json").read_text()) == summary
    lines = (tmp_path / "events.jsonl").read_text().splitlines()
    assert len(lines) == summary["events"]
    assert all({"t", "kind"} <= json.loads(line).keys() for line in lines)
    html = (tmp_path / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 4
    assert "http://" not in html and "https://" not in html  # self-contained


def test_same_seed_same_events(tmp_path: Path) -> None:
    for run in ("a", "b"):
        assert (
            fma("sim", "run", "sim/scenarios/demo.yaml", "--out", str(tmp_path / run)).returncode
            == 0
        )
    assert (tmp_path / "a" / "events.jsonl").read_bytes() == (
        tmp_path / "b" / "events.jsonl"
    ).read_bytes()


def test_bad_scenario_is_one_line_and_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        yaml.safe_dump(
            {
                "name": "x",
                "duration": "1h",
                "cluster": {"node_pools": [{"name": "a", "count": 1}]},
                "models": [{"name": "m", "weights_gib": 1}],
                "demand": [{"model": "m", "rate_per_h": -4}],
            }
        )
    )
    result = fma("sim", "run", str(bad), "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        f"error: {bad}: demand[0].rate_per_h: Input should be greater than or equal to 0"
    ]
    assert not (tmp_path / "out").exists()


def test_crds_prints_one_document_per_kind() -> None:
    result = fma("crds")
    assert result.returncode == 0
    kinds = [d["spec"]["names"]["kind"] for d in yaml.safe_load_all(result.stdout)]
    assert kinds == [
        "InferenceServerConfig",
        "LauncherConfig",
        "LauncherPopulationPolicy",
        "ModelService",
    ]
