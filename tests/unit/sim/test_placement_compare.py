"""`fma sim compare --placement`: one column per placement, and a bad name refused."""

import json
import subprocess
import sys
from pathlib import Path

import yaml

from tests.unit.sim.test_placement_policies import RETURNING

ROOT = Path(__file__).parents[3]


def fma(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fma", *args], capture_output=True, text=True, cwd=ROOT, timeout=300
    )


def test_compare_reports_hot_hits_latency_and_gpu_hours_per_placement(tmp_path: Path) -> None:
    scenario = tmp_path / "returning.yaml"
    scenario.write_text(yaml.safe_dump(RETURNING))
    result = fma(
        "sim", "compare", str(scenario), "--policy", "fma", "--placement", "default",
        "--placement", "gpu-aware", "--seeds", "1", "--seed", "2", "--out", str(tmp_path),
        "--workers", "1",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    variants = {v["placement"]: v for v in json.loads(result.stdout)["variants"]}
    assert [v["label"] for v in variants.values()] == ["fma / default", "fma / gpu-aware"]
    assert variants["gpu-aware"]["pooled"]["hot_rate"] > variants["default"]["pooled"]["hot_rate"]
    for v in variants.values():
        assert {"p50", "p95"} <= set(v["pooled"]["actuation_latency_s"])
        assert v["mean"]["gpu_hours_held"] > 0
    assert (
        "fma / gpu-aware" in result.stderr
        and "fma / gpu-aware" in (tmp_path / "report.html").read_text()
    )


def test_an_unknown_placement_exits_2_naming_the_option(tmp_path: Path) -> None:
    scenario = tmp_path / "returning.yaml"
    scenario.write_text(yaml.safe_dump(RETURNING))
    result = fma("sim", "compare", str(scenario), "--placement", "nearest", "--out", str(tmp_path))
    assert result.returncode == 2
    assert "--placement: unknown 'nearest'" in result.stderr
