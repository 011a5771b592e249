"""``fma requester serve`` as a process: both servers up on the env-given ports, and a clean
stop on SIGTERM."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).parents[3]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for(url: str, timeout_s: float = 20.0) -> httpx.Response:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return httpx.get(url, timeout=1.0)
        except httpx.HTTPError:
            assert time.monotonic() < deadline, f"{url} never answered"
            time.sleep(0.05)


@pytest.mark.timeout(60)
def test_the_requester_serves_probes_and_spi_and_stops_on_sigterm() -> None:
    probes_port, spi_port = free_port(), free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "fma.requester", "serve", "--host", "127.0.0.1", "--mock-gpus", "2"],
        cwd=ROOT,
        env={**os.environ, "PROBES_PORT": str(probes_port), "SPI_PORT": str(spi_port)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        assert wait_for(f"http://127.0.0.1:{probes_port}/ready").status_code == 503
        spi = f"http://127.0.0.1:{spi_port}"
        assert wait_for(f"{spi}/v1/dual-pods/accelerators").json() == ["GPU-0", "GPU-1"]
        assert httpx.post(f"{spi}/v1/become-ready").status_code == 200
        assert httpx.get(f"http://127.0.0.1:{probes_port}/ready").status_code == 200
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
    finally:
        process.kill()
        process.wait()


def test_a_bad_port_is_a_one_line_error() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "fma.requester", "serve", "--mock-gpus", "1"],
        cwd=ROOT,
        env={**os.environ, "PROBES_PORT": "nope"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "PROBES_PORT" in result.stderr
    assert "Traceback" not in result.stderr
