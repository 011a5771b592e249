"""The scenario library under the three actuation policies: the table of docs/scenarios.md.

Runs ``fma sim compare SCENARIO --seeds 3`` for every scenario of ``sim/scenarios/`` (seeds 7,
8 and 9), prints the table as Markdown and records the numbers in
``bench/results/library-<date>.json``. ``--seeds N`` changes the number of seeds.
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import record

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = sorted((ROOT / "sim" / "scenarios").glob("*.yaml"))
ORDER = [
    "demo",
    "multi-model-zipf",
    "diurnal-day",
    "burst-after-idle",
    "node-failure",
    "sleeper-memory-squeeze",
    "trace-replay",
    "longtail",
]


def compare(path: Path, seeds: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as out:
        done = subprocess.run(
            [
                str(ROOT / ".venv" / "bin" / "fma"),
                "sim",
                "compare",
                str(path),
                "--policy",
                "fma",
                "--policy",
                "direct-sleep",
                "--policy",
                "cold",
                "--seeds",
                str(seeds),
                "--out",
                out,
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        return json.loads(done.stdout)


def row(name: str, variant: dict[str, object]) -> str:
    mean, pooled = variant["mean"], variant["pooled"]  # type: ignore[index]
    latency = pooled["actuation_latency_s"]
    seeds = len(variant["runs"])  # type: ignore[arg-type]
    met = sum(r["slo_met"] for r in variant["runs"])  # type: ignore[union-attr]
    cells = [
        f"`{name}`",
        str(variant["label"]),
        f"{mean['hot_hit_rate']:.2f}",
        f"{mean['warm_hit_rate']:.2f}",
        f"{latency['p50']:.1f}",
        f"{latency['p95']:.1f}",
        f"{mean['p95_wait_s']:.0f}",
        f"{mean['gpu_hours_held']:.1f}",
        f"{int(met)}/{seeds}",
    ]
    return "| " + " | ".join(cells) + " |"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    names = sorted((p.stem for p in SCENARIOS), key=lambda n: [*ORDER, n].index(n))
    table, results = [], {}
    started = time.monotonic()
    for name in names:
        result = compare(ROOT / "sim" / "scenarios" / f"{name}.yaml", args.seeds)
        results[name] = result["variants"]
        table += [row(name, v) for v in result["variants"]]
        print(f"{name}: done after {time.monotonic() - started:.0f} s", file=sys.stderr)
    print(
        "| scenario | policy | hot hit rate | warm rate | p50 actuation (s) | p95 actuation (s) "
        "| p95 wait (s) | GPU-h held per run | SLO met (seeds) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    print("\n".join(table))
    path = record("library", {"seeds": args.seeds, "scenarios": results, "table": table})
    print(f"recorded {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
