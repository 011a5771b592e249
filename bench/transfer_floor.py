"""The physical floor of a wake, measured: pinned host <-> device copy rates with PyTorch.

For each size from 1 to 64 GiB (as far as the GPU's free memory and the host allow) and each
direction, host to device and back, the script copies a pinned host buffer and a device buffer
in one piece and in the chunk sizes vLLM's sleep mode moves (its allocator backs up and restores
each allocation on its own: 2 MiB granules up to whole weight tensors), and records GB/s
(10^9 bytes per second) and the ratio to the link's line rate (from ``nvidia-smi``: PCIe
generation and width; NVLink-C2C on a GH200). It also times page-locking the host buffer,
which a first sleep pays. The fastest rate is the floor the simulator holds every wake to
(``fma/api/topology.py``); ``docs/simulator.md`` names the source of its defaults.

It needs a GPU and PyTorch with CUDA; without them it says which is missing, measures nothing
and exits with status 3. Results go to ``bench/results/transfer_floor-<date>.json``.

    python bench/transfer_floor.py [--max-gib 64] [--chunks-mib 2,32,256] [--repeats 3]
"""

import argparse
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import record

GIB = 1024**3
MIB = 1024**2
GB = 1e9
SIZES_GIB = (1, 2, 4, 8, 16, 32, 64)
CHUNKS_MIB = (2, 32, 256)
"""vLLM's sleep mode copies per allocation: the allocator's 2 MiB granules, mid-sized and
large weight tensors."""
NO_GPU = 3
"""Exit status when nothing could be measured."""

PCIE_GBPS_PER_LANE = {1: 0.25, 2: 0.5, 3: 0.985, 4: 1.969, 5: 3.938, 6: 7.563}
"""Usable GB/s per lane and direction after encoding (8b/10b up to Gen2, 128b/130b after)."""


@dataclass(frozen=True)
class Link:
    name: str
    line_gbps: float


def pcie_link(generation: int, width: int) -> Link:
    """A PCIe link's line rate per direction."""
    per_lane = PCIE_GBPS_PER_LANE.get(generation)
    if per_lane is None or width <= 0:
        raise ValueError(f"unknown PCIe link: Gen{generation} x{width}")
    return Link(f"PCIe Gen{generation} x{width}", round(per_lane * width, 1))


def parse_sizes(text: str) -> list[int]:
    """``"2,32,256"`` -> [2, 32, 256]; each a positive whole number."""
    sizes = []
    for part in text.split(","):
        part = part.strip()
        if not part.isdigit() or int(part) <= 0:
            raise ValueError(f"{part!r} is not a positive whole number")
        sizes.append(int(part))
    return sizes


def chunk_plan(total: int, chunk: int) -> list[tuple[int, int]]:
    """(offset, length) pieces covering ``total`` bytes, ``chunk`` bytes each (the last less)."""
    if chunk <= 0:
        raise ValueError("a chunk must hold at least one byte")
    return [(offset, min(chunk, total - offset)) for offset in range(0, total, chunk)]


def sizes_that_fit(max_gib: int, device_free: int, host_free: int) -> list[int]:
    """The sizes (GiB) to measure: up to ``max_gib``, leaving a margin of the GPU's free memory
    and half the host's."""
    return [
        s
        for s in SIZES_GIB
        if s <= max_gib and s * GIB <= 0.9 * device_free and s * GIB <= 0.5 * host_free
    ]


def rate(nbytes: int, seconds: float) -> float:
    return round(nbytes / seconds / GB, 2) if seconds > 0 else 0.0


def link_of_gpu(index: int) -> Link | None:
    """The GPU's host link from ``nvidia-smi`` (None when it cannot tell)."""
    try:
        done = subprocess.run(
            [
                "nvidia-smi",
                f"--id={index}",
                "--query-gpu=name,pcie.link.gen.max,pcie.link.width.max",
                "--format=csv,noheader,nounits",
            ],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    name, gen, width = (part.strip() for part in done.stdout.strip().split(","))
    if "GH200" in name or "GB200" in name:
        return Link("NVLink-C2C", 450.0)
    try:
        return pcie_link(int(gen), int(width))
    except ValueError:
        return None


# --- measuring (needs a GPU) ---------------------------------------------------------------------


def why_no_gpu() -> str | None:
    """None when a CUDA GPU is usable from PyTorch, else why not."""
    try:
        import torch
    except ImportError:
        return f"PyTorch is not installed for this Python ({sys.executable})"
    if not torch.cuda.is_available():
        built = torch.version.cuda or "none"
        return f"torch {torch.__version__} (CUDA {built}) sees no CUDA device"
    return None


def measure(max_gib: int, chunks_mib: list[int], repeats: int) -> dict[str, Any]:
    import torch

    device = torch.device("cuda", 0)
    free, _total = torch.cuda.mem_get_info(device)
    host_free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    sizes = sizes_that_fit(max_gib, free, host_free)
    link = link_of_gpu(0)
    rows: list[dict[str, Any]] = []
    for size_gib in sizes:
        nbytes = size_gib * GIB
        started = time.perf_counter()
        host = torch.empty(nbytes, dtype=torch.uint8, pin_memory=True)
        pin_s = time.perf_counter() - started
        gpu = torch.empty(nbytes, dtype=torch.uint8, device=device)
        for direction in ("h2d", "d2h"):
            src, dst = (host, gpu) if direction == "h2d" else (gpu, host)
            for chunk_mib in [0, *chunks_mib]:
                pieces = chunk_plan(nbytes, chunk_mib * MIB if chunk_mib else nbytes)
                best_s = float("inf")
                for _ in range(repeats):
                    torch.cuda.synchronize(device)
                    started = time.perf_counter()
                    for offset, length in pieces:
                        dst[offset : offset + length].copy_(
                            src[offset : offset + length], non_blocking=True
                        )
                    torch.cuda.synchronize(device)
                    best_s = min(best_s, time.perf_counter() - started)
                gbps = rate(nbytes, best_s)
                rows.append(
                    {
                        "size_gib": size_gib,
                        "direction": direction,
                        "chunk_mib": chunk_mib or None,
                        "seconds": round(best_s, 4),
                        "gbps": gbps,
                        "of_line_rate": round(gbps / link.line_gbps, 3) if link else None,
                    }
                )
                print(rows[-1])
        rows.append(
            {"size_gib": size_gib, "pin_seconds": round(pin_s, 3), "pin_gbps": rate(nbytes, pin_s)}
        )
        del host, gpu
        torch.cuda.empty_cache()
    fastest = {
        d: max((r["gbps"] for r in rows if r.get("direction") == d), default=0.0)
        for d in ("h2d", "d2h")
    }
    return {
        "gpu": torch.cuda.get_device_name(device),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "link": {"name": link.name, "line_gbps": link.line_gbps} if link else None,
        "floor_gbps": fastest,
        "rows": rows,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-gib", type=int, default=64)
    parser.add_argument("--chunks-mib", default=",".join(str(c) for c in CHUNKS_MIB))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    try:
        chunks = parse_sizes(args.chunks_mib)
    except ValueError as error:
        print(f"transfer_floor: --chunks-mib: {error}", file=sys.stderr)
        return 2
    missing = why_no_gpu()
    if missing is not None:
        print(f"transfer_floor: no GPU found: {missing}; nothing measured", file=sys.stderr)
        return NO_GPU
    results = measure(args.max_gib, chunks, args.repeats)
    if not args.no_record:
        print(f"wrote {record('transfer_floor', results)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
