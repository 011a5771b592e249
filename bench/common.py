"""Shared helpers for benchmark scripts: machine facts and result files."""

import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = 0.0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem_gib = round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": mem_gib,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        )
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def record(name: str, results: dict[str, Any]) -> Path:
    """Write ``bench/results/<name>-<date>.json`` with the machine and commit; return the path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d")
    path = RESULTS / f"{name}-{stamp}.json"
    payload = {
        "benchmark": name,
        "date": stamp,
        "commit": commit(),
        "machine": machine(),
        **results,
    }
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path


def baseline(ref: str, argv: list[str], result_name: str) -> dict[str, Any]:
    """Run a benchmark as it was at commit ``ref``, in this run and on this machine.

    The commit is checked out in a temporary worktree; ``argv`` (e.g. ``["-m",
    "bench.plan_cost"]``) runs there with this interpreter and that tree first on the path, and
    the result it recorded (``bench/results/<result_name>-<date>.json`` in the worktree) is
    returned. The worktree is removed afterwards.
    """
    root = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "baseline"
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(tree), ref],
            cwd=root,
            check=True,
            capture_output=True,
        )
        try:
            env = {**os.environ, "PYTHONPATH": str(tree)}
            subprocess.run([sys.executable, *argv], cwd=tree, env=env, check=True)
            stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d")
            recorded: dict[str, Any] = json.loads(
                (tree / "bench" / "results" / f"{result_name}-{stamp}.json").read_text()
            )
            return recorded
        finally:
            subprocess.run(
                ["git", "worktree", "remove", "--force", str(tree)], cwd=root, check=False
            )
