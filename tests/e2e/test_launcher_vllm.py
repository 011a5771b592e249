"""End to end with real vLLM on the CPU: the launcher (vLLM pre-imported) starts an instance
of a tiny model built here, the instance serves a completion, and DELETE leaves no process.

The vLLM venv is cached outside the repo (``python -m fma.launcher.vllm_env ensure``); this
module builds it when missing, so ``pytest tests/e2e`` works on a fresh machine (a cold
build takes a few minutes).
"""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from fma.launcher import vllm_env
from fma.launcher.tiny_model import engine_options

ROOT = Path(__file__).resolve().parents[2]
LAUNCHER_START_S_MAX = 180.0
ENGINE_START_S_MAX = 600.0
STOP_S_MAX = 60.0

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1800)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def running_in_group(pgid: int) -> list[int]:
    """Pids of live (non-zombie) processes whose process group is ``pgid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        state, group = fields[0], int(fields[3])
        if group == pgid and state not in ("Z", "X"):
            found.append(int(entry.name))
    return found


def wait_until(condition: Callable[[], bool], what: str, timeout_s: float) -> None:
    """Poll ``condition`` until it holds; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s:.0f} s waiting until {what}")
        time.sleep(0.25)


def answers_200(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def vllm_python() -> Path:
    return vllm_env.ensure()


@pytest.fixture(scope="module")
def tiny_model(vllm_python: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tiny-model")
    subprocess.run(
        [str(vllm_python), "-m", "fma.launcher.tiny_model", str(out)],
        check=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        timeout=300,
    )
    return out


@pytest.fixture(scope="module")
def launcher_url(vllm_python: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    log = tmp_path_factory.mktemp("launcher") / "launcher.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [
                str(vllm_python),
                "-m",
                "fma.launcher",
                "serve",
                "--engine",
                "vllm",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            cwd=ROOT,
            # PYTHONPATH: this checkout, whatever checkout the cached venv was linked to.
            env={**os.environ, "PYTHONPATH": str(ROOT), "VLLM_CPU_KVCACHE_SPACE": "1"},
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(
            lambda: answers_200(f"{url}/health") or process.poll() is not None,
            "the launcher answers",
            LAUNCHER_START_S_MAX,
        )
        assert process.poll() is None, log.read_text()[-4000:]
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_S_MAX)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            pytest.fail("the launcher did not stop on SIGTERM")


def test_an_instance_of_a_tiny_model_serves_a_completion_and_is_deleted(
    launcher_url: str, tiny_model: Path
) -> None:
    instances = f"{launcher_url}/v2/vllm/instances"
    port = free_port()
    options = engine_options(tiny_model, port)
    created = httpx.put(
        f"{instances}/tiny-1",
        json={"options": options, "env_vars": {"VLLM_CPU_KVCACHE_SPACE": "1"}},
        timeout=60,
    )
    assert created.status_code == 201, created.text
    state = created.json()
    assert (state["instance_id"], state["status"]) == ("tiny-1", "running")
    pid = state["pid"]

    def healthy_or_stopped() -> bool:
        if answers_200(f"http://127.0.0.1:{port}/health"):
            return True
        return httpx.get(f"{instances}/tiny-1", timeout=10).json()["status"] == "stopped"

    wait_until(healthy_or_stopped, "the instance is healthy", ENGINE_START_S_MAX)
    log = httpx.get(f"{instances}/tiny-1/log", headers={"Range": "bytes=-20000"}, timeout=10)
    assert httpx.get(f"{instances}/tiny-1", timeout=10).json()["status"] == "running", log.text

    completion = httpx.post(
        f"http://127.0.0.1:{port}/v1/completions",
        json={"model": "tiny", "prompt": "Hello world", "max_tokens": 8, "temperature": 0},
        timeout=120,
    )
    assert completion.status_code == 200, completion.text
    body = completion.json()
    assert body["usage"]["completion_tokens"] == 8
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["model"] == "tiny"

    assert running_in_group(pid), "the instance is a process group of its own"
    deleted = httpx.delete(f"{instances}/tiny-1", timeout=STOP_S_MAX)
    assert deleted.status_code == 200
    assert deleted.json()["status"] == "stopped"
    assert httpx.get(f"{instances}/tiny-1", timeout=10).status_code == 404
    wait_until(lambda: not running_in_group(pid), "every process of the instance is gone", 30)


def test_options_vllm_rejects_are_refused_before_any_process_starts(launcher_url: str) -> None:
    response = httpx.post(
        f"{launcher_url}/v2/vllm/instances",
        json={"options": ["--model", "x", "--no-such-vllm-flag"]},
        timeout=60,
    )
    assert response.status_code == 422
    assert "--no-such-vllm-flag" in response.json()["detail"]
    assert httpx.get(f"{launcher_url}/v2/vllm/instances", timeout=10).json()["total_instances"] == 0


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
