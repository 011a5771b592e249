"""Policy knobs of the decisions: which actuation strategy, which eviction, which limits."""

from dataclasses import dataclass
from enum import StrEnum

from fma.core.model import GIB_BYTES


class Actuation(StrEnum):
    FMA = "fma"
    """Sleep on unbind, wake on a matching request; launchers when configured."""
    DIRECT_SLEEP = "direct-sleep"
    """Direct providers only (no launchers), with sleep and wake."""
    COLD = "cold"
    """No sleeping: an unbound provider is deleted, every request starts from scratch."""


SLEEPER_GPU_RESIDUE_BYTES_DEFAULT = int(1.5 * GIB_BYTES)
"""GPU memory a level-1 sleeper keeps (CUDA context, allocator): 1-2 GiB measured upstream."""


@dataclass(frozen=True, slots=True)
class Policy:
    """Knobs shared by every decision; the defaults are what a new cluster should use.

    ``sleeping_bytes_per_gpu_max`` bounds the host memory that sleepers attributed to one GPU may
    hold (None: only host memory bounds it). ``host_memory_reserve_fraction`` keeps part of host
    memory for the node itself. ``sleeper_gpu_residue_bytes`` is what each sleeper leaves on
    each of its GPUs.
    """

    actuation: Actuation = Actuation.FMA
    eviction: str = "lru"
    sleeping_bytes_per_gpu_max: int | None = None
    host_memory_reserve_fraction: float = 0.1
    sleeper_gpu_residue_bytes: int = SLEEPER_GPU_RESIDUE_BYTES_DEFAULT
    ready_timeout_s: float = 600.0
    retry_delay_s: float = 5.0
    keep_launchers_with_sleepers: bool = True
    """Launchers holding instances are not surplus: the sleeping budget, not the population
    policy, decides when their sleepers go (upstream deletes them as soon as they unbind)."""
    launcher_start_s: float = 15.0
    """What a new launcher costs the requester waiting for it: its Pod start and vLLM import.
    A sleeper is reclaimed for a port only when it is expected to save less than this."""
    launchers_per_node_max: int | None = None
    """Launchers one node may hold (None: two per GPU; each costs host memory and CPU for
    its imported vLLM). Below it, a requester gets a launcher of its own rather than reclaim a
    valuable sleeper or hide sleepers on other GPUs by binding their launcher."""
