"""``fma requester serve`` as a process: probes, SPI and proxy up on the ports asked for, and a
clean stop on SIGTERM."""

import os
import re
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
def test_the_requester_serves_probes_spi_and_proxy_and_stops_on_sigterm() -> None:
    probes_port, spi_port, proxy_port = free_port(), free_port(), free_port()
    process = subprocess.Popen(
        [
            *[sys.executable, "-m", "fma.requester", "serve", "--host", "127.0.0.1"],
            *["--mock-gpus", "2", "--spi-port", str(spi_port), "--proxy-port", str(proxy_port)],
        ],
        cwd=ROOT,
        # PROBES_PORT is honoured without its flag; --spi-port wins over SPI_PORT.
        env={**os.environ, "PROBES_PORT": str(probes_port), "SPI_PORT": str(free_port())},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert wait_for(f"http://127.0.0.1:{probes_port}/ready").status_code == 503
        spi = f"http://127.0.0.1:{spi_port}"
        assert wait_for(f"{spi}/v1/dual-pods/accelerators").json() == ["GPU-0", "GPU-1"]
        assert httpx.post(f"{spi}/v1/become-ready").status_code == 200
        assert httpx.get(f"http://127.0.0.1:{probes_port}/ready").status_code == 200

        assert httpx.get(f"{spi}/v1/proxy/config").status_code == 404
        target = {"address": "127.0.0.1", "port": probes_port}  # the requester's own probes
        assert httpx.put(f"{spi}/v1/proxy/config", json=target).status_code == 200
        with httpx.Client(base_url=f"http://127.0.0.1:{proxy_port}") as through_proxy:
            assert through_proxy.get("/health").json() == {"status": "OK"}
            assert through_proxy.get("/ready").json() == {"ready": True}
            process.send_signal(signal.SIGTERM)  # with a kept-alive connection through it
            assert process.wait(timeout=20) == 0
        assert process.stderr is not None
        log = process.stderr.read()
        assert f"proxy port {proxy_port}" in log
        assert f"forwarding to 127.0.0.1:{probes_port}" in log
        # When it listens and when it was called, timestamped (the probes are not logged).
        stamp = r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO uvicorn"
        assert re.search(rf"{stamp}.*running on http://127.0.0.1:{spi_port}", log, re.M)
        assert re.search(rf'{stamp}.*"POST /v1/become-ready HTTP/1.1" 200', log, re.M)
        assert "GET /ready" not in log and "GET /health" not in log
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
