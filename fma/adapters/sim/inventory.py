"""The inventory at the head of a trace: nodes and models, so checkers need nothing else.

The invariant checkers judge a trace alone. To know a GPU's memory, a node's host memory or
what a model needs, they read these records, written once at ``t = 0``:

- ``node_added``: ``node``, ``pool``, ``gpus`` (UUIDs), ``gpu_memory_bytes``,
  ``host_memory_bytes``, ``launchers_wanted`` (unbound launchers the population policy keeps);
- ``model_added``: ``model``, ``bytes`` (weights), ``gpus`` (per replica).
"""

from collections.abc import Iterable, Mapping

from fma.adapters.sim.state import SimNode
from fma.adapters.sim.trace import Trace


def record_inventory(
    trace: Trace,
    nodes: Mapping[str, SimNode],
    models: Iterable[tuple[str, int, int]],
    *,
    launchers_wanted: int = 0,
) -> None:
    """Write ``node_added`` for every node and ``model_added`` for every (name, bytes, gpus)."""
    for node in nodes.values():
        trace.record(
            0.0,
            "node_added",
            node=node.name,
            pool=node.pool,
            gpus=[g.uuid for g in node.gpus],
            gpu_memory_bytes=min((g.memory_bytes for g in node.gpus), default=0),
            host_memory_bytes=node.host_memory_bytes,
            launchers_wanted=launchers_wanted,
        )
    for name, weights_bytes, gpus in models:
        trace.record(0.0, "model_added", model=name, bytes=weights_bytes, gpus=gpus)
