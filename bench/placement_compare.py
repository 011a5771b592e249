"""Sleeper-aware placement on the long-tail scenario: hot hits, latency and GPU-hours per policy.

Runs ``fma sim compare sim/scenarios/longtail.yaml --policy fma --placement P ...`` for the four
placements on ``--seeds`` seeds (7 onwards), prints a Markdown table and whether the targets
hold (the best deployable placement, node-affinity or gpu-aware, reaches at least 95 % of the
oracle's hot-hit rate and closes at least half of the gap between default and the oracle), and
records everything in ``bench/results/placement-<date>.json``. Simulated time only: the figures
do not depend on the machine's load.
"""

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from common import record

ROOT = Path(__file__).resolve().parents[1]
PLACEMENTS = ("default", "node-affinity", "gpu-aware", "oracle")
DEPLOYABLE = ("node-affinity", "gpu-aware")


def compare(scenario: Path, seeds: int) -> dict[str, Any]:
    args = [str(ROOT / ".venv" / "bin" / "fma"), "sim", "compare", str(scenario)]
    args += ["--policy", "fma", "--seeds", str(seeds), "--no-progress"]
    for placement in PLACEMENTS:
        args += ["--placement", placement]
    with tempfile.TemporaryDirectory() as out:
        done = subprocess.run(
            [*args, "--out", out], capture_output=True, text=True, check=True, cwd=ROOT
        )
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def targets(hot: dict[str, float]) -> dict[str, Any]:
    """The targets on mean hot-hit rates."""
    best = max(DEPLOYABLE, key=lambda p: hot[p])
    gap = hot["oracle"] - hot["default"]
    share = hot[best] / hot["oracle"] if hot["oracle"] else 0.0
    closed = (hot[best] - hot["default"]) / gap if gap > 0 else 1.0
    return {
        "best_deployable": best,
        "share_of_oracle": round(share, 4),
        "gap_closed": round(closed, 4),
        "share_of_oracle_met": share >= 0.95,
        "gap_closed_met": closed >= 0.5,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--scenario", type=Path, default=ROOT / "sim/scenarios/longtail.yaml")
    args = parser.parse_args()
    result = compare(args.scenario, args.seeds)
    rows, hot = [], {}
    for v in result["variants"]:
        mean, lat = v["mean"], v["pooled"]["actuation_latency_s"]
        hot[v["placement"]] = mean["hot_hit_rate"]
        per_seed = " ".join(f"{r['hot_hit_rate']:.3f}" for r in v["runs"])
        rows.append(
            f"| `{v['placement']}` | {mean['hot_hit_rate']:.3f} | {per_seed} "
            f"| {mean['warm_hit_rate']:.3f} | {lat['p50']:.1f} | {lat['p95']:.1f} "
            f"| {mean['gpu_hours_held']:.1f} |"
        )
    print(
        "| placement | hot hit rate (mean) | per seed | warm rate | p50 actuation (s) "
        "| p95 actuation (s) | GPU-h held per run |"
    )
    print("|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    verdict = targets(hot)
    print(json.dumps(verdict, indent=2))
    path = record(
        "placement",
        {
            "scenario": result["scenario"],
            "seeds": result["seeds"],
            "targets": verdict,
            "variants": result["variants"],
            "table": rows,
        },
    )
    print(f"recorded {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
