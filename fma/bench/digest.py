"""What a sweep keeps of each run: the :class:`Task` that made it and its :class:`Digest`.

Value types only, so that reports and comparisons (:mod:`fma.bench`) read digests without
depending on the code that runs simulations (:mod:`fma.runs`), which depends on them.
"""

from dataclasses import dataclass, field
from typing import Any

from fma.api.scenario import Scenario
from fma.bench.timeline import Series


@dataclass(frozen=True)
class Task:
    """One run of a sweep: a scenario (already varied) and a seed, with a label to group by."""

    scenario: Scenario
    seed: int
    label: str = ""


@dataclass(frozen=True)
class Digest:
    """What a sweep keeps of one run. Equal for equal tasks, except ``wall_s``."""

    label: str
    seed: int
    summary: dict[str, Any]
    """The run's summary without ``wall_s`` (so digests compare equal across executors)."""
    latencies: dict[str, list[float]]
    """Actuation latencies by path."""
    series: dict[str, Series] = field(default_factory=dict)
    """``gpus`` (GPU states) and ``waiting`` (unserved requesters), averaged over buckets."""
    wall_s: float = 0.0
