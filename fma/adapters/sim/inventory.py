"""The inventory at the head of a trace: nodes, models and limits, so checkers need nothing
else.

The invariant checkers judge a trace alone. To know a GPU's memory, a node's host memory, what
a model needs, or the limits the controller promises to keep, they read these records, written
once at ``t = 0``:

- ``node_added``: ``node``, ``pool``, ``gpus`` (UUIDs), ``gpu_memory_bytes``,
  ``host_memory_bytes``, ``launchers_wanted`` (unbound launchers the population policy keeps),
  ``topology`` and ``h2d_floor_bytes_per_s`` (its fastest host-to-device copy: the floor of a
  wake);
- ``model_added``: ``model``, ``bytes`` (weights), ``gpus`` (per replica), ``utilization`` (the
  share of each GPU an awake engine claims);
- ``limits``: ``host_memory_reserve_fraction``, ``sleeper_residue_bytes`` (GPU memory a sleeper
  keeps), ``sleeping_bytes_per_gpu_max`` (or null), ``ready_timeout_s`` and ``grace_s`` (how
  soon the controller must react to a change it did not cause). A launcher's instance cap is
  on its ``provider_created`` record.
"""

from collections.abc import Mapping

from fma.adapters.sim.state import SimNode
from fma.adapters.sim.trace import Trace
from fma.api.latency import GB, GIB
from fma.api.scenario import Scenario
from fma.api.topology import LINKS
from fma.core.policy import Policy


def record_inventory(
    trace: Trace,
    nodes: Mapping[str, SimNode],
    scenario: Scenario,
    policy: Policy,
    *,
    launchers_wanted: int = 0,
    grace_s: float,
) -> None:
    """Write ``node_added`` for every node, ``model_added`` for every model and the limits."""
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
            topology=node.topology,
            h2d_floor_bytes_per_s=LINKS[node.topology].h2d_floor_gbps * GB,
        )
    for model in scenario.models:
        trace.record(
            0.0,
            "model_added",
            model=model.name,
            bytes=int(model.weights_gib * GIB),
            gpus=model.gpus,
            utilization=model.gpu_memory_utilization,
        )
    trace.record(
        0.0,
        "limits",
        host_memory_reserve_fraction=policy.host_memory_reserve_fraction,
        sleeper_residue_bytes=policy.sleeper_gpu_residue_bytes,
        sleeping_bytes_per_gpu_max=policy.sleeping_bytes_per_gpu_max,
        ready_timeout_s=policy.ready_timeout_s,
        grace_s=grace_s,
    )
