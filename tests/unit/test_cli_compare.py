"""`fma sim compare`: same seeds under several policies, one JSON, one report."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).parents[2]
SCENARIO = {
    "name": "tiny",
    "description": "Two models on four GPUs for an hour.",
    "duration": "1h",
    "cluster": {"node_pools": [{"name": "n", "count": 1, "gpus_per_node": 4, "disk_gbps": 2}]},
    "models": [
        {"name": "a", "weights_gib": 16, "engine_init_s": 30},
        {"name": "b", "weights_gib": 8, "engine_init_s": 20},
    ],
    "demand": [{"models": ["a", "b"], "rate_per_h": 30, "hold": "5m"}],
    "slo": {"p95_actuation_s": 60},
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


def test_compare_prints_json_and_writes_a_report(scenario: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = fma(
        "sim", "compare", str(scenario), "--policy", "fma", "--policy", "direct-sleep",
        "--policy", "cold", "--seeds", "2", "--out", str(out), "--workers", "1",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["seeds"] == [7, 8]
    labels = [v["label"] for v in report["variants"]]
    assert labels == ["fma", "direct-sleep", "cold"]
    by_label = {v["label"]: v for v in report["variants"]}
    assert by_label["cold"]["mean"]["hot_hit_rate"] == 0
    assert by_label["direct-sleep"]["mean"]["warm_hit_rate"] == 0
    assert by_label["direct-sleep"]["mean"]["hot_hit_rate"] > 0
    assert [r["seed"] for r in by_label["fma"]["runs"]] == [7, 8]
    assert json.loads((out / "compare.json").read_text()) == report
    html = (out / "report.html").read_text()
    assert html.count('src="data:image/png;base64,') == 4
    assert "GPU-h held" in html and "https://" not in html


def test_eviction_variants_and_cold_once(scenario: Path, tmp_path: Path) -> None:
    result = fma(
        "sim", "compare", str(scenario), "--policy", "direct-sleep", "--policy", "cold",
        "--eviction", "lru", "--eviction", "cost", "--seeds", "1", "--out", str(tmp_path),
        "--workers", "1",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    labels = [v["label"] for v in json.loads(result.stdout)["variants"]]
    assert labels == ["direct-sleep / lru", "direct-sleep / cost", "cold"]


def test_compare_on_a_dask_cluster_matches_local(scenario: Path, tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    args = ["sim", "compare", str(scenario), "--policy", "fma", "--policy", "cold", "--seeds", "2"]
    local = fma(*args, "--out", str(tmp_path / "local"), "--workers", "2")
    with distributed.LocalCluster(
        n_workers=1,
        threads_per_worker=2,
        processes=False,
        protocol="tcp",
        host="127.0.0.1",
        dashboard_address=None,
    ) as cluster:
        remote = fma(*args, "--out", str(tmp_path / "dask"), "--cluster", cluster.scheduler_address)
    assert local.returncode == 0 and remote.returncode == 0, remote.stderr
    assert json.loads(local.stdout) == json.loads(remote.stdout)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--policy", "warmest"],
            "error: --policy: unknown 'warmest' (choose fma, direct-sleep, cold)",
        ),
        (["--eviction", "fifo"], "error: --eviction: unknown 'fifo' (choose lru, oldest, cost)"),
    ],
)
def test_bad_options_are_one_line(
    scenario: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    result = fma("sim", "compare", str(scenario), *args, "--out", str(tmp_path / "o"))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [message]
    assert not (tmp_path / "o").exists()
