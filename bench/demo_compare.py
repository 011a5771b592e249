"""The demo comparison: ``fma sim compare sim/scenarios/demo.yaml`` over two seed ranges.

Runs the CLI as a user would, for seeds 7-9 and 7-16 (all actuation policies, the scenario's
eviction), and records per variant the pooled hot and warm rates and actuation p50/p95, with the
SLO the scenario states, in ``bench/results/demo_compare-<date>.json``. The figures come from
simulated time: they do not depend on the machine's load, which is recorded all the same.

    .venv/bin/python bench/demo_compare.py [--no-record]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import record

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "sim" / "scenarios" / "demo.yaml"
FMA = Path(sys.executable).parent / "fma"
RANGES = ((7, 3), (7, 10))  # (base seed, how many): 7-9 and 7-16


def compare(base: int, count: int) -> dict[str, Any]:
    """``fma sim compare`` for seeds base..base+count-1, as its compare.json gives it."""
    with tempfile.TemporaryDirectory() as out:
        command = [str(FMA), "sim", "compare", str(SCENARIO)]
        command += [
            "--seed",
            str(base),
            "--seeds",
            str(count),
            "--out",
            out,
            "--no-progress",
            "--workers",
            "1",
        ]
        subprocess.run(command, check=True, capture_output=True, text=True)
        result: dict[str, Any] = json.loads((Path(out) / "compare.json").read_text())
        return result


def summary(result: dict[str, Any]) -> dict[str, Any]:
    """Per variant: pooled path rates and latency percentiles, and the seeds' mean hot rate."""
    seeds = result["seeds"]
    rows = {}
    for variant in result["variants"]:
        pooled = variant["pooled"]
        latency = pooled["actuation_latency_s"]
        rows[variant["label"]] = {
            "hot_rate": pooled["hot_rate"],
            "warm_rate": pooled["warm_rate"],
            "cold_launcher_rate": pooled["cold_launcher_rate"],
            "cold_rate": pooled["cold_rate"],
            "p50_s": latency["p50"],
            "p95_s": latency["p95"],
        }
    return {"seeds": f"{seeds[0]}-{seeds[-1]}", "slo": result["slo"], "variants": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--no-record", action="store_true", help="print only")
    args = parser.parse_args()
    loaded_before = os.getloadavg()[0]
    ranges = [summary(compare(base, count)) for base, count in RANGES]
    figures = {
        "load_average_1m_before_after": [round(loaded_before, 2), round(os.getloadavg()[0], 2)],
        "scenario": str(SCENARIO.relative_to(ROOT)),
        "ranges": ranges,
    }
    print(json.dumps(figures, indent=2))
    if not args.no_record:
        print(f"wrote {record('demo_compare', figures)}")


if __name__ == "__main__":
    main()
