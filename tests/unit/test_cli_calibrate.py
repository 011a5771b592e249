"""`fma sim calibrate`: a trace in, the fitted latency section out (and a calibrated scenario)."""

import json
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).parents[2]


def fma(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fma", *args], capture_output=True, text=True, cwd=ROOT, timeout=300
    )


def test_calibrate_a_run_and_write_the_scenario(tmp_path: Path) -> None:
    run = fma("sim", "run", "sim/scenarios/demo.yaml", "--out", str(tmp_path), "--no-progress")
    assert run.returncode == 0, run.stderr
    out = tmp_path / "calibrated.yaml"
    result = fma(
        "sim", "calibrate", str(tmp_path / "events.jsonl"),
        "--scenario", "sim/scenarios/demo.yaml", "--write", str(out),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    fitted = json.loads(result.stdout)
    assert fitted["latency"]["pod_start_s"] == 5.0  # what demo.yaml says
    assert fitted["fitted"]["wake_overhead_s"]["samples"] > 0
    calibrated = yaml.safe_load(out.read_text())
    assert calibrated["name"] == "demo"
    check = fma("sim", "run", str(out), "--out", str(tmp_path / "again"), "--no-progress")
    assert check.returncode == 0, check.stderr


def test_bad_trace_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "events.jsonl"
    bad.write_text('{"t": 0, "kind": "x"}\n{"kind": "no time"}\n')
    result = fma("sim", "calibrate", str(bad))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: {bad} line 2: an event needs 't' and 'kind'"
    ]
    missing = fma("sim", "calibrate", str(tmp_path / "absent.jsonl"))
    assert missing.returncode == 2 and "cannot read" in missing.stderr
