"""Warm start through the launcher versus a cold vLLM start, on the same tiny model.

Measures, in one run on this machine:

- ``launcher_ready_s``: ``fma launcher serve --engine vllm`` spawned to its /health (this is
  where vLLM is imported, once);
- ``warm_s``: launcher ``PUT`` of an instance to the instance's /health answering 200;
- ``cold_s``: ``python -m vllm.entrypoints.openai.api_server`` spawned to its /health;

each ``--runs`` times, alternating warm and cold so both see the same page cache, for two
engine layouts:

- ``default``: vLLM's own; on the CPU backend vLLM forces ``spawn`` for its engine-core and
  worker processes, and each of them imports vLLM again, warm or cold;
- ``single_engine_process``: ``--distributed-executor-backend uni`` with
  ``VLLM_ENABLE_V1_MULTIPROCESSING=0``: the worker runs inside the engine-core process, so
  one spawned import is left.

Writes medians and cold/warm ratios with machine info and the git commit to
``bench/results/launcher-<date>.json``.

Run: ``.venv/bin/python bench/launcher.py [--runs 3]`` (builds the vLLM venv if missing).
"""

import argparse
import datetime
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import commit, machine  # noqa: E402
from fma.launcher import vllm_env  # noqa: E402
from fma.launcher.tiny_model import engine_options  # noqa: E402

POLL_S = 0.05
START_S_MAX = 600.0
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "VLLM_CPU_KVCACHE_SPACE": "1"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_healthy(
    url: str, started_s: float, process: subprocess.Popen[bytes] | None = None
) -> float:
    """Seconds from ``started_s`` until ``url`` answers 200 (polled every ``POLL_S``)."""
    while True:
        try:
            if httpx.get(url, timeout=2.0).status_code == 200:
                return time.monotonic() - started_s
        except httpx.HTTPError:
            pass
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode}")
        if time.monotonic() - started_s > START_S_MAX:
            raise TimeoutError(f"{url} not healthy after {START_S_MAX} s")
        time.sleep(POLL_S)


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


LAYOUTS: dict[str, tuple[list[str], dict[str, str]]] = {
    "default": ([], {}),
    "single_engine_process": (
        ["--distributed-executor-backend", "uni"],
        {"VLLM_ENABLE_V1_MULTIPROCESSING": "0"},
    ),
}


def warm_run(launcher: str, model: Path, layout: str, run: int) -> float:
    port = free_port()
    extra_options, extra_env = LAYOUTS[layout]
    instance = f"{launcher}/v2/vllm/instances/bench-{layout.replace('_', '-')}-{run}"
    body = {
        "options": engine_options(model, port) + extra_options,
        "env_vars": {"VLLM_CPU_KVCACHE_SPACE": "1", **extra_env},
    }
    started_s = time.monotonic()
    reply = httpx.put(instance, json=body, timeout=60)
    reply.raise_for_status()
    elapsed_s = wait_healthy(f"http://127.0.0.1:{port}/health", started_s)
    httpx.delete(instance, timeout=120).raise_for_status()
    return elapsed_s


def cold_run(python: Path, model: Path, layout: str, log: Path) -> float:
    port = free_port()
    extra_options, extra_env = LAYOUTS[layout]
    argv = [
        str(python),
        "-m",
        "vllm.entrypoints.openai.api_server",
        *engine_options(model, port),
        *extra_options,
    ]
    with log.open("ab") as output:
        started_s = time.monotonic()
        process = subprocess.Popen(
            argv,
            env={**ENV, **extra_env},
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        return wait_healthy(f"http://127.0.0.1:{port}/health", started_s, process)
    finally:
        stop(process)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()

    python = vllm_env.ensure()
    work = Path(tempfile.mkdtemp(prefix="fma-bench-launcher-"))
    model = work / "tiny-model"
    subprocess.run(
        [str(python), "-m", "fma.launcher.tiny_model", str(model)],
        check=True,
        env=ENV,
        capture_output=True,
    )

    launcher_port = free_port()
    launcher_url = f"http://127.0.0.1:{launcher_port}"
    with (work / "launcher.log").open("ab") as output:
        started_s = time.monotonic()
        launcher = subprocess.Popen(
            [
                str(python),
                "-m",
                "fma.launcher",
                "serve",
                "--engine",
                "vllm",
                "--port",
                str(launcher_port),
                "--log-dir",
                str(work / "instances"),
            ],
            env=ENV,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    measured: dict[str, dict[str, list[float]]] = {
        layout: {"warm_s": [], "cold_s": []} for layout in LAYOUTS
    }
    try:
        launcher_ready_s = wait_healthy(f"{launcher_url}/health", started_s, launcher)
        for run in range(args.runs):
            for layout, times in measured.items():
                times["warm_s"].append(warm_run(launcher_url, model, layout, run))
                times["cold_s"].append(cold_run(python, model, layout, work / "cold.log"))
                print(
                    f"run {run} {layout}: warm {times['warm_s'][-1]:.2f} s, "
                    f"cold {times['cold_s'][-1]:.2f} s",
                    file=sys.stderr,
                )
    finally:
        stop(launcher)
        shutil.rmtree(work, ignore_errors=True)

    layouts: dict[str, Any] = {}
    for layout, times in measured.items():
        warm_median = statistics.median(times["warm_s"])
        cold_median = statistics.median(times["cold_s"])
        extra_options, extra_env = LAYOUTS[layout]
        layouts[layout] = {
            "extra_options": extra_options,
            "extra_env": extra_env,
            "warm_s": [round(x, 2) for x in times["warm_s"]],
            "cold_s": [round(x, 2) for x in times["cold_s"]],
            "warm_median_s": round(warm_median, 2),
            "cold_median_s": round(cold_median, 2),
            "cold_over_warm": round(cold_median / warm_median, 2),
        }
    versions = subprocess.run(
        [
            str(python),
            "-c",
            "import importlib.metadata as m; print(m.version('torch'), m.version('vllm-cpu'))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    today = datetime.date.today().isoformat()
    result = {
        "benchmark": "launcher warm start vs cold vLLM start",
        "date": today,
        "commit": commit(),
        "machine": machine(),
        "versions": {"torch": versions[0], "vllm_cpu": versions[1]},
        "model": "random-weight Llama, hidden 128, 2 heads, 2 layers (fma.launcher.tiny_model)",
        "engine_options": engine_options(Path("<tiny-model>"), 0)[2:-4],
        "env": {"VLLM_CPU_KVCACHE_SPACE": "1"},
        "runs": args.runs,
        "launcher_ready_s": round(launcher_ready_s, 2),
        "layouts": layouts,
        "load_average_1m_at_end": round(os.getloadavg()[0], 2),
        "poll_interval_s": POLL_S,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"launcher-{today}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print(f"written: {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
