"""The ports of the reconcile shell: what it needs from a world, as narrow Protocols.

Both adapters implement them: the simulator over its SimPy environment and its state, the
operator over asyncio and its informer caches. Time is seconds of the world's clock — SimPy's
``env.now``, or the Unix epoch in the operator, since the core compares it with Kubernetes
timestamps.
"""

from collections.abc import Callable, Sequence
from typing import Protocol

from fma.core.model import ConfigSnapshot, NodeSnapshot


class Scheduler(Protocol):
    """The world's clock and timer."""

    def now_s(self) -> float: ...

    def call_later(self, delay_s: float, fn: Callable[[], None]) -> None:
        """Call ``fn`` once, ``delay_s`` seconds from now (0: as soon as possible, not inline)."""
        ...


class ClusterReader(Protocol):
    """Gathers snapshots from what the world already holds; never blocks on the network."""

    def node_names(self) -> Sequence[str]: ...

    def snapshot(self, node_name: str) -> NodeSnapshot: ...

    def config_snapshot(self) -> ConfigSnapshot: ...

    def resync(self, key: str) -> None:
        """Refresh what is cached about ``key`` before it is reconciled again (after an
        outcome that may or may not have been applied)."""
        ...
