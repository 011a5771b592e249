"""bench/transfer_floor.py without a GPU: its plan, its arithmetic, and what it says instead."""

import subprocess
import sys
from pathlib import Path

import pytest

from bench import transfer_floor as tf

SCRIPT = Path(__file__).resolve().parents[3] / "bench" / "transfer_floor.py"


def test_chunks_cover_the_buffer_once() -> None:
    plan = tf.chunk_plan(10, 4)
    assert plan == [(0, 4), (4, 4), (8, 2)]
    assert sum(length for _, length in tf.chunk_plan(5 * tf.GIB, 2 * tf.MIB)) == 5 * tf.GIB
    assert tf.chunk_plan(7, 100) == [(0, 7)]
    with pytest.raises(ValueError):
        tf.chunk_plan(7, 0)


def test_pcie_line_rates() -> None:
    assert tf.pcie_link(5, 16).line_gbps == 63.0
    assert tf.pcie_link(4, 16).line_gbps == 31.5
    with pytest.raises(ValueError, match="Gen9"):
        tf.pcie_link(9, 16)


def test_sizes_leave_room_on_the_gpu_and_the_host() -> None:
    assert tf.sizes_that_fit(64, 80 * tf.GIB, 1024 * tf.GIB) == [1, 2, 4, 8, 16, 32, 64]
    assert tf.sizes_that_fit(64, 40 * tf.GIB, 1024 * tf.GIB) == [1, 2, 4, 8, 16, 32]
    assert tf.sizes_that_fit(8, 80 * tf.GIB, 8 * tf.GIB) == [1, 2, 4]


def test_chunk_sizes_are_checked() -> None:
    assert tf.parse_sizes("2, 32,256") == [2, 32, 256]
    with pytest.raises(ValueError, match="'x'"):
        tf.parse_sizes("2,x")


def test_without_a_gpu_it_says_so_and_measures_nothing() -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--no-record"], capture_output=True, text=True, timeout=120
    )
    if tf.why_no_gpu() is None:
        pytest.skip("this machine has a GPU")
    assert done.returncode == tf.NO_GPU
    assert "no GPU found" in done.stderr and "nothing measured" in done.stderr
