"""Policy knobs of the decisions: which actuation strategy, which eviction, which limits."""

from dataclasses import dataclass
from enum import StrEnum


class Actuation(StrEnum):
    FMA = "fma"
    """Sleep on unbind, wake on a matching request; launchers when configured."""
    DIRECT_SLEEP = "direct-sleep"
    """Direct providers only (no launchers), with sleep and wake."""
    COLD = "cold"
    """No sleeping: an unbound provider is deleted, every request starts from scratch."""


@dataclass(frozen=True, slots=True)
class Policy:
    """Knobs shared by every decision; the defaults are what a new cluster should use.

    ``sleeping_bytes_per_gpu_max`` bounds the host memory that sleepers attributed to one GPU may
    hold (None: only host memory bounds it). ``host_memory_reserve_fraction`` keeps part of host
    memory for the node itself.
    """

    actuation: Actuation = Actuation.FMA
    eviction: str = "lru"
    sleeping_bytes_per_gpu_max: int | None = None
    host_memory_reserve_fraction: float = 0.1
    ready_timeout_s: float = 600.0
    retry_delay_s: float = 5.0
    keep_launchers_with_sleepers: bool = True
    """Launchers holding instances are not surplus: the sleeping budget, not the population
    policy, decides when their sleepers go (upstream deletes them as soon as they unbind)."""
